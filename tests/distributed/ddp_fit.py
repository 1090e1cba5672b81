"""A scheduled fit under DDP (gloo, 2 CPU processes); rank 0 writes what it saw to the JSON path in argv[1]."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_support"))
from fts_support import BoringFTSModel, Recorder

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

SCHEDULE = {0: {"params": ["model.3.*"]}, 1: {"params": ["model.2.*"], "lr": 1e-4}, 2: {"params": ["model.[01].*"]}}


def main(out: Path) -> None:
    pl.seed_everything(3)
    recorder = Recorder()
    fts = FinetuningScheduler(ft_schedule=SCHEDULE)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=10,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(out.parent),
        limit_train_batches=4,
        limit_val_batches=2,
        callbacks=[fts, FTSEarlyStopping(monitor="val_loss", patience=1), FTSCheckpoint(monitor="val_loss"), recorder],
    )
    model = BoringFTSModel(diverge_on_epoch=2, lr=0.05)
    trainer.fit(model)
    # Each process keeps its own copy of the weights: DDP must have kept them identical through every phase.
    torch.save(model.state_dict(), out.with_name(f"weights_rank{trainer.global_rank}.pt"))
    if trainer.is_global_zero:
        depths = {epoch: state["depth"] for epoch, state in recorder.epochs.items()}
        out.write_text(
            json.dumps(
                {
                    "depths": depths,
                    "final_depth": fts.curr_depth,
                    "world": trainer.world_size,
                    "groups": len(trainer.optimizers[0].param_groups),
                }
            )
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
