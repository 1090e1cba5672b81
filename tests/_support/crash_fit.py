"""One fit of the resume tests' model in a process of its own, which the test may kill with SIGKILL.

``python crash_fit.py ROOT OUT [--kill-in-batch EPOCH:BATCH | --kill-in-write EPOCH] [--resume CKPT]``

The fit is deterministic on CPU: the three callbacks, the resume tests' three-phase schedule, checkpoints every
epoch (``save_top_k=-1``, ``save_last``) in ``ROOT/ckpt``. At the end the weights go to ``OUT`` (``torch.save``) and
the depth of every epoch to ``OUT.json``. ``--kill-in-batch`` kills the process after that training batch;
``--kill-in-write`` kills it halfway through writing the first checkpoint file of that epoch, in the write itself.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import fsspec.implementations.local
import lightning.pytorch as pl
import torch

sys.path.insert(0, str(Path(__file__).parent))
from fts_support import BoringFTSModel, Recorder, fit_kwargs

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

SCHEDULE = {
    0: {"params": ["model.3.bias", "model.3.weight"]},
    1: {"params": ["model.2.*"], "lr": 1e-4},
    2: {"params": ["model.1.*", "model.0.*"], "lr": 1e-5},
}


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class KillInBatch(pl.Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            _die()


class KillInWrite(pl.Callback):
    """Arms a kill inside the next file write once validation of ``epoch`` ends (the checkpoint comes next)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch != self.epoch:
            return
        write = fsspec.implementations.local.LocalFileOpener.write

        def half_then_die(opener: Any, data: bytes) -> int:
            written = write(opener, data[: len(data) // 2])
            opener.flush()
            _die()
            return written  # never reached

        fsspec.implementations.local.LocalFileOpener.write = half_then_die  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--kill-in-batch")
    parser.add_argument("--kill-in-write", type=int)
    parser.add_argument("--resume")
    args = parser.parse_args()
    pl.seed_everything(7)
    recorder = Recorder()
    callbacks: list[pl.Callback] = [
        FinetuningScheduler(ft_schedule=SCHEDULE),
        FTSEarlyStopping(monitor="val_loss", patience=2, min_delta=1e-3),
        FTSCheckpoint(
            dirpath=args.root / "ckpt", monitor="val_loss", save_top_k=-1, save_last=True, filename="{epoch}"
        ),
        recorder,
    ]
    if args.kill_in_batch:
        epoch, batch = map(int, args.kill_in_batch.split(":"))
        callbacks.append(KillInBatch(epoch, batch))
    if args.kill_in_write is not None:
        callbacks.append(KillInWrite(args.kill_in_write))
    trainer = pl.Trainer(**fit_kwargs(args.root, max_epochs=9, enable_checkpointing=True), callbacks=callbacks)
    trainer.fit(BoringFTSModel(diverge_on_epoch=3, lr=0.05), ckpt_path=args.resume)
    model = trainer.lightning_module
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, args.out)
    depths = {epoch: seen["depth"] for epoch, seen in recorder.epochs.items()}
    args.out.with_suffix(".json").write_text(json.dumps(depths))


if __name__ == "__main__":
    main()
