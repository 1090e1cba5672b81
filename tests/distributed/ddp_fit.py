"""A scheduled fit under DDP (gloo, 2 CPU processes); every process reports what it saw.

Usage: ``ddp_fit.py OUT_DIR NAME [--strategy FLAG] [--resume CKPT] [--sync] [--lonely-rank RANK] [--devices N]``.

Each process writes ``NAME_rank{r}.json`` (depth per epoch, transitions, optimizer groups) and
``NAME_rank{r}.pt`` (its weights) from inside the fit, so ``ddp_spawn``'s workers report too. Checkpoints of every
epoch go to ``OUT_DIR/ck``. ``--sync`` logs ``val_loss`` with ``sync_dist=True``; without it each process logs its
own value. ``--lonely-rank R`` makes only process R's validation loss stop improving after epoch 1, so only it sees
the phase converge.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_support"))
from fts_support import BoringFTSModel, fit_kwargs, run_and_exit

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

SCHEDULE = {
    0: {"params": ["model.3.*"], "max_transition_epoch": 2},
    1: {"params": ["model.2.*"], "lr": 1e-3, "max_transition_epoch": 4},
    2: {"params": ["model.[01].*"]},
}
LONELY_SCHEDULE = {  # phase 0 would last to epoch 4: only early stopping on the lonely process can end it sooner
    0: {"params": ["model.3.*"], "max_transition_epoch": 4},
    1: {"params": ["model.2.*"], "lr": 1e-3, "max_transition_epoch": 6},
    2: {"params": ["model.[01].*"]},
}


class DDPModel(BoringFTSModel):
    """BoringFTSModel whose validation loss can be synchronised, or made to diverge on one process only."""

    def __init__(self, sync: bool, lonely_rank: int | None, batch_size: int) -> None:
        super().__init__(diverge_on_epoch=5, lr=0.05, batch_size=batch_size)
        self.sync = sync
        self.lonely_rank = lonely_rank

    def _in_order(self, loader: DataLoader[torch.Tensor]) -> DataLoader[torch.Tensor]:
        # Lightning's own distributed sampler shuffles the training data: give each process every world-th sample
        # in order instead, so that a global batch is the same whatever the number of processes.
        world, rank = self.trainer.world_size, self.trainer.global_rank
        sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank, shuffle=False)
        return DataLoader(loader.dataset, batch_size=self.batch_size, sampler=sampler)

    def train_dataloader(self) -> DataLoader[torch.Tensor]:
        return self._in_order(super().train_dataloader())

    def val_dataloader(self) -> DataLoader[torch.Tensor]:
        return self._in_order(super().val_dataloader())

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        diverged = self.current_epoch >= self.diverge_on_epoch
        if self.lonely_rank is not None:
            diverged = self.global_rank == self.lonely_rank and self.current_epoch >= 1
        target = (torch.zeros if diverged else torch.ones)(batch.shape[0], 2)
        loss = nn.functional.mse_loss(self(batch), target)
        if self.lonely_rank is not None and diverged:
            loss = loss + self.current_epoch  # keeps rising: only this process sees the phase stop improving
        self.log("val_loss", loss, sync_dist=self.sync)


class RankReport(pl.Callback):
    """Records each epoch's depth and writes this process's report when the fit ends."""

    def __init__(self, out: Path, name: str) -> None:
        self.out, self.name = out, name
        self.depths: dict[int, int] = {}
        self.best: dict[int, str] = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.depths[trainer.current_epoch] = _scheduler(trainer).curr_depth
        checkpoint = trainer.checkpoint_callback
        self.best[trainer.current_epoch] = Path(getattr(checkpoint, "best_model_path", "") or "-").name

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fts = _scheduler(trainer)
        report: dict[str, Any] = {
            "world": trainer.world_size,
            "depths": self.depths,
            "best": self.best,  # the checkpoint restore_best would reload, as this process sees it
            "final_depth": fts.curr_depth,
            "history": [(change.epoch, change.depth, change.reason.name) for change in fts.transition_history],
            "groups": [len(group["params"]) for group in trainer.optimizers[0].param_groups],
        }
        rank = trainer.global_rank
        (self.out / f"{self.name}_rank{rank}.json").write_text(json.dumps(report))
        weights = {name: param.detach().clone() for name, param in pl_module.state_dict().items()}
        torch.save(weights, self.out / f"{self.name}_rank{rank}.pt")


def _scheduler(trainer: pl.Trainer) -> FinetuningScheduler:
    return next(cb for cb in trainer.callbacks if isinstance(cb, FinetuningScheduler))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("name")
    parser.add_argument("--strategy", default="ddp")
    parser.add_argument("--resume")
    parser.add_argument("--sync", action="store_true")
    parser.add_argument("--lonely-rank", type=int)
    parser.add_argument("--devices", type=int, default=2, help="1: the same global batch on one process, no DDP")
    args = parser.parse_args()
    pl.seed_everything(3)
    strategy = args.strategy if args.devices > 1 else "auto"
    settings = fit_kwargs(args.out, devices=args.devices, strategy=strategy, max_epochs=7, limit_train_batches=4)
    settings["use_distributed_sampler"] = False  # the model's loaders shard the data in order
    trainer = pl.Trainer(
        **settings,
        callbacks=[
            FinetuningScheduler(ft_schedule=SCHEDULE if args.lonely_rank is None else LONELY_SCHEDULE),
            FTSEarlyStopping(monitor="val_loss", patience=2),
            FTSCheckpoint(monitor="val_loss", dirpath=args.out / "ck", save_top_k=-1, filename="{epoch}"),
            RankReport(args.out, args.name),
        ],
    )
    model = DDPModel(sync=args.sync, lonely_rank=args.lonely_rank, batch_size=2 // args.devices)
    trainer.fit(model, ckpt_path=str(args.out / "ck" / args.resume) if args.resume else None)


if __name__ == "__main__":
    run_and_exit(main)
