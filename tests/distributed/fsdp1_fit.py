"""A scheduled fit through Lightning's FSDPStrategy (FSDP1) on 2 CPU processes (gloo; see ``cpu_fsdp.py``).

Usage: ``fsdp1_fit.py OUT_DIR NAME [--orig|--flat] [--split] [--resume CKPT] [--gpu]``. Layers are wrapped one FSDP
unit per ``nn.Linear``; the head (``model.3``) joins them through ``awp_overrides``. ``--flat`` sets
``use_orig_params=False``. ``--split`` uses a schedule whose phase 1 thaws only the bias of ``model.2`` (its weight
in phase 0). ``--gpu`` runs Lightning's own ``FSDPStrategy`` on one CUDA device instead (``tests/gpu``). Rank 0
writes ``NAME.json`` and ``NAME.pt`` (the full, logical weights).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_support"))
from cpu_fsdp import CPUFSDPStrategy
from fts_support import BoringFTSModel, fit_kwargs, run_and_exit

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint

ALIGNED = {
    0: {"params": ["model.3.*"], "max_transition_epoch": 1},
    1: {"params": ["model.2.*"], "lr": 1e-3, "max_transition_epoch": 2},
    2: {"params": ["model.[01].*"], "lr": 1e-4, "max_transition_epoch": 4},
}
SPLIT = {
    0: {"params": ["model.3.*", "model.2.weight"], "max_transition_epoch": 1},
    1: {"params": ["model.2.bias"], "max_transition_epoch": 2},
    2: {"params": ["model.[01].*"], "max_transition_epoch": 4},
}


class FSDPModel(BoringFTSModel):
    def configure_optimizers(self) -> Any:
        # With use_orig_params=False the optimizer must see the flat parameters, which the wrapped model holds.
        params = [p for p in self.trainer.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("name")
    parser.add_argument("--flat", action="store_true")
    parser.add_argument("--orig", action="store_true")
    parser.add_argument("--split", action="store_true")
    parser.add_argument("--partial", action="store_true", help="no phase names model.0 and model.1")
    parser.add_argument("--reinit", action="store_true", help="phase 2 brings a new optimizer (SGD)")
    parser.add_argument("--bad-awp", action="store_true", help="awp_overrides that match nothing")
    parser.add_argument("--resume")
    parser.add_argument("--gpu", action="store_true", help="Lightning's own FSDPStrategy on one CUDA device")
    args = parser.parse_args()
    pl.seed_everything(11)
    schedule: dict[int, Any] = SPLIT if args.split else {0: ALIGNED[0], 1: ALIGNED[1]} if args.partial else ALIGNED
    if args.reinit:
        new_optimizer = {"optimizer_init": {"class_path": "torch.optim.SGD", "init_args": {"lr": 1e-3}}}
        schedule = {**schedule, 2: {**schedule[2], "new_optimizer": new_optimizer}}
    overrides = ["model.nothing", "model.(", r"model\.3$"] if args.bad_awp else [r"model\.3$"]
    fts = FinetuningScheduler(
        ft_schedule=schedule, epoch_transitions_only=True, strategy_adapter_cfg={"awp_overrides": overrides}
    )
    fsdp = FSDPStrategy if args.gpu else CPUFSDPStrategy
    strategy = fsdp(auto_wrap_policy={nn.Linear}, use_orig_params=not args.flat)
    checkpoints = FTSCheckpoint(monitor="val_loss", dirpath=args.out / "ck", save_top_k=-1, filename="{epoch}")
    settings = fit_kwargs(args.out, accelerator="cuda" if args.gpu else "cpu", devices=1 if args.gpu else 2)
    settings.update(strategy=strategy, max_epochs=4, limit_train_batches=4, limit_val_batches=2)
    trainer = pl.Trainer(callbacks=[fts, checkpoints], **settings)
    model = FSDPModel(lr=0.05)
    trainer.fit(model, ckpt_path=str(args.out / "ck" / args.resume) if args.resume else None)
    state = trainer.strategy.lightning_module_state_dict()  # the full (logical) weights, gathered on rank 0
    if trainer.is_global_zero:
        torch.save(state, args.out / f"{args.name}.pt")
        result = {
            "history": [(change.epoch, change.depth, change.restored_best) for change in fts.transition_history],
            "groups": [len(group["params"]) for group in trainer.optimizers[0].param_groups],
            "trainable": sorted(fts.strategy_adapter.logical_param_translation(list(fts.trainable()))),
            "optimizer": type(trainer.optimizers[0]).__name__,
            "units": sorted(n for n, m in model.named_modules() if type(m).__name__ == "FullyShardedDataParallel"),
        }
        (args.out / f"{args.name}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    run_and_exit(main)
