"""A scheduled fit of an FSDP2-sharded model (``fully_shard`` in ``configure_model``) through Lightning's
ModelParallelStrategy on 2 CPU processes (gloo), with ``restore_best``; optionally resumed from a checkpoint folder.

Usage: ``model_parallel_fit.py OUT_JSON CKPT_DIR [RESUME_FROM]``. Rank 0 writes what it saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import ModelParallelStrategy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_support"))
from fts_support import BoringFTSModel, fit_kwargs, run_and_exit

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint

SCHEDULE = {
    0: {"params": ["model.3.*"], "max_transition_epoch": 1},
    1: {"params": ["model.2.*"], "lr": 1e-3, "max_transition_epoch": 2},
    2: {"params": ["model.[01].*"], "lr": 1e-4, "max_transition_epoch": 3},
}


class ShardedModel(BoringFTSModel):
    def configure_model(self) -> None:
        from torch.distributed.fsdp import fully_shard

        for layer in self.model:
            fully_shard(layer, mesh=self.device_mesh["data_parallel"])
        fully_shard(self.model, mesh=self.device_mesh["data_parallel"])


def main(out: Path, ckpt_dir: Path, resume_from: str | None) -> None:
    pl.seed_everything(5)
    fts = FinetuningScheduler(ft_schedule=SCHEDULE, epoch_transitions_only=True)
    strategy = ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)
    settings = fit_kwargs(out.parent, devices=2, strategy=strategy, max_epochs=4, limit_train_batches=4)
    trainer = pl.Trainer(
        **{**settings, "limit_val_batches": 2},
        callbacks=[fts, FTSCheckpoint(monitor="val_loss", dirpath=ckpt_dir, save_top_k=-1, filename="{epoch}")],
    )
    model = ShardedModel(lr=0.05)
    trainer.fit(model, ckpt_path=str(ckpt_dir / resume_from) if resume_from else None)
    # The whole (unsharded) weights, gathered on every rank, to compare a resumed fit with the uninterrupted one.
    full = {name: param.full_tensor().detach() for name, param in model.named_parameters()}
    torch.save(full, out.with_name(f"{out.stem}_weights_rank{trainer.global_rank}.pt"))
    if trainer.is_global_zero:
        result: dict[str, Any] = {
            "depth": fts.curr_depth,
            "groups": [len(group["params"]) for group in trainer.optimizers[0].param_groups],
            "restored_best": fts.restored_best_count,
            "history": [(change.epoch, change.depth, change.restored_best) for change in fts.transition_history],
        }
        out.write_text(json.dumps(result))


if __name__ == "__main__":
    run_and_exit(main, Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
