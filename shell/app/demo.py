"""A demo of phased fine-tuning on real data: a small pretrained MLP learns all ten of scikit-learn's digits.

Run it with ``python -m finetuning_scheduler demo`` (or ``python shell/app/demo.py``, which also works with the
reference Fine-Tuning Scheduler installed instead of this package: it only uses the public API).

1. **Pretrain** a backbone (64 → 128 → 64) with a 5-way head on the digits 0-4 of the training split.
2. **Fine-tune** on all ten digits with a fresh 10-way head and ``FinetuningScheduler``, in three phases:
   the head first, then the backbone's top layer, then its bottom layer, each with its own learning rate. A
   phase ends at its ``max_transition_epoch`` or earlier when ``FTSEarlyStopping`` finds that the validation
   loss stopped improving; the last phase runs until early stopping or ``max_epochs``.
3. **Report** per-epoch progress, a per-phase summary (epochs, trainable share, learning rates, why the phase
   ended) and the final validation accuracy, and leave in the output folder the schedule that was used
   (``schedule.yaml``), the per-epoch trace (``trace.csv``, ``trace.json``) and the checkpoints.

The data ship with scikit-learn (``sklearn.datasets.load_digits``: 1,797 8x8 images), so nothing is downloaded.
Everything runs on CPU in a few seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typing_extensions import override

try:
    from ._console import DemoConsole
except ImportError:  # run as a script (`python shell/app/demo.py`, e.g. under the reference FTS): the sibling file
    from _console import DemoConsole  # type: ignore[import-not-found,no-redef]

SUMMARY = "fine-tune a pretrained MLP on scikit-learn's digits in three phases (CPU, a few seconds)"

PRETRAIN_CLASSES = 5  # the pretraining task: digits 0-4 only
HIDDEN = (128, 64)
BATCH_SIZE = 64
PHASE0_LR = 1e-2  # the optimizer's own lr, used by phase 0 (the head)
ES_PATIENCE = 2  # FTSEarlyStopping: a phase has converged after 2 epochs without a val_loss gain of MIN_DELTA
MIN_DELTA = 5e-3

# The schedule, written to the output folder and passed to FinetuningScheduler as a file. Parameter names are those
# of `DigitsClassifier` below: `backbone.0` is the bottom Linear layer, `backbone.2` the top one.
SCHEDULE: dict[int, dict[str, Any]] = {
    0: {"params": ["head.weight", "head.bias"], "max_transition_epoch": 5},
    1: {"params": ["backbone.2.weight", "backbone.2.bias"], "lr": 3e-3, "max_transition_epoch": 14},
    2: {"params": ["backbone.0.weight", "backbone.0.bias"], "lr": 1e-3},
}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the demo's options to ``parser`` (shared by ``python -m finetuning_scheduler demo`` and this module)."""
    parser.add_argument("--output-dir", type=Path, default=Path("fts_demo_output"), help="where to write results")
    parser.add_argument("--seed", type=int, default=7, help="seed for the data split, initialisation and training")
    parser.add_argument("--max-epochs", type=int, default=24, help="fine-tuning epochs at most (default 24)")
    parser.add_argument("--pretrain-epochs", type=int, default=30, help="pretraining epochs (default 30)")
    parser.add_argument("--plain", action="store_true", help="plain text output, even when rich is installed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; returns the process exit status."""
    parser = add_arguments(argparse.ArgumentParser(prog="demo", description=SUMMARY))
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed arguments; returns the process exit status."""
    import torch

    threads = torch.get_num_threads()
    # One thread: the model is tiny, and extra threads only add synchronisation (and suffer on a busy machine).
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():  # the filters set by _quiet_libraries end with the demo
            return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    console = DemoConsole(plain=args.plain)
    _quiet_libraries()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The demo owns this subfolder: checkpoints of an earlier run would only confuse the top-k bookkeeping.
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    data = _load_digits(args.seed)
    console.line(
        f"digits: {len(data['y_train'])} training and {len(data['y_val'])} validation images (8x8, 10 classes)"
    )
    backbone, pretrain_acc = _pretrain(data, args.seed, args.pretrain_epochs)
    console.line(
        f"pretrained the backbone on digits 0-{PRETRAIN_CLASSES - 1} for {args.pretrain_epochs} epochs: "
        f"validation accuracy {pretrain_acc:.1%} on those digits"
    )
    recorder, final_acc = _finetune(data, backbone, args, out, console)
    phases = _phase_summary(recorder)
    seconds = time.perf_counter() - started
    console.summary(phases, final_acc, len(data["y_val"]), seconds)
    _write_outputs(out, recorder, phases, final_acc, pretrain_acc, seconds, args)
    console.line(f"wrote {out / 'schedule.yaml'}, {out / 'trace.csv'} and {out / 'trace.json'}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Data and pretraining
# ---------------------------------------------------------------------------------------------------------------


def _quiet_libraries() -> None:
    # Lightning's banner lines and the "few workers" advice would drown the demo's own output. Lightning sets its
    # loggers' levels when first imported, so import it before lowering them.
    import lightning.pytorch  # noqa: F401

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory.*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")


def _load_digits(seed: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return {
        "x_train": torch.from_numpy(x_train),
        "y_train": torch.from_numpy(y_train),
        "x_val": torch.from_numpy(x_val),
        "y_val": torch.from_numpy(y_val),
    }


def _make_backbone() -> Any:
    from torch import nn

    return nn.Sequential(nn.Linear(64, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU())


def _pretrain(data: dict[str, Any], seed: int, epochs: int) -> tuple[Any, float]:
    """Train backbone + 5-way head on the digits 0-4 of the training split (plain torch); return the backbone."""
    import torch
    from lightning.pytorch import seed_everything
    from torch import nn

    seed_everything(seed, verbose=False)
    keep = data["y_train"] < PRETRAIN_CLASSES
    x, y = data["x_train"][keep], data["y_train"][keep]
    backbone = _make_backbone()
    model = nn.Sequential(backbone, nn.Linear(HIDDEN[1], PRETRAIN_CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(BATCH_SIZE):  # type: ignore[no-untyped-call]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    keep_val = data["y_val"] < PRETRAIN_CLASSES
    with torch.no_grad():
        predictions = model(data["x_val"][keep_val]).argmax(dim=1)
    return backbone, float((predictions == data["y_val"][keep_val]).float().mean())


# ---------------------------------------------------------------------------------------------------------------
# Fine-tuning
# ---------------------------------------------------------------------------------------------------------------


def _classifier_class() -> type:
    """Define the LightningModule (lazily, so that importing this module stays cheap)."""
    import torch
    from lightning.pytorch import LightningModule
    from torch import nn

    class DigitsClassifier(LightningModule):
        """The pretrained backbone with a fresh 10-way head."""

        def __init__(self, backbone: nn.Module) -> None:
            super().__init__()
            self.backbone = backbone
            self.head = nn.Linear(HIDDEN[1], 10)

        @override
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone(x))  # type: ignore[no-any-return]

        @override
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        @override
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            logits = self(x)
            self.log("val_loss", nn.functional.cross_entropy(logits, y))
            self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

        @override
        def configure_optimizers(self) -> Any:
            # Only what phase 0 thawed; FinetuningScheduler adds one param group per later phase.
            return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=PHASE0_LR)

    return DigitsClassifier


def _recorder_class() -> type:
    """Define the recording callback (lazily, like the model)."""
    from lightning.pytorch import Callback

    class PhaseRecorder(Callback):
        """Records, after the scheduler's own hooks, the phase of each epoch and why each phase ended."""

        def __init__(self, scheduler: Any, schedule: dict[int, dict[str, Any]], console: DemoConsole) -> None:
            self.scheduler = scheduler
            self.schedule = schedule
            self.console = console
            self.rows: list[dict[str, Any]] = []
            self.endings: dict[int, str] = {}
            self._depth = 0

        @override
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            depth, epoch = self.scheduler.curr_depth, trainer.current_epoch
            if depth != self._depth:
                mte = self.schedule[self._depth].get("max_transition_epoch", -1)
                self.endings[self._depth] = (
                    f"max_transition_epoch ({mte}) reached"
                    if 0 <= mte <= epoch
                    else f"early stopping (no val_loss gain in {ES_PATIENCE} epochs)"
                )
                self._depth = depth

        @override
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            metrics = trainer.callback_metrics
            params = list(pl_module.parameters())
            trainable = sum(p.numel() for p in params if p.requires_grad)
            row = {
                "epoch": trainer.current_epoch,
                "phase": self.scheduler.curr_depth,
                "trainable_params": trainable,
                "trainable_share": trainable / sum(p.numel() for p in params),
                "lrs": [pg["lr"] for pg in trainer.optimizers[0].param_groups],
                "train_loss": float(metrics["train_loss"]),
                "val_loss": float(metrics["val_loss"]),
                "val_acc": float(metrics["val_acc"]),
            }
            self.rows.append(row)
            self.console.epoch(row, trainer.max_epochs)

        @override
        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            completed = trainer.fit_loop.epoch_progress.current.completed
            self.endings[self._depth] = (
                f"max_epochs ({trainer.max_epochs}) reached"
                if completed >= trainer.max_epochs
                else "early stopping (final phase)"
            )

    return PhaseRecorder


def _finetune(data: dict[str, Any], backbone: Any, args: argparse.Namespace, out: Path, console: Any) -> Any:
    import torch
    import yaml
    from lightning.pytorch import Trainer, seed_everything
    from torch.utils.data import DataLoader, TensorDataset

    from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

    schedule_path = out / "schedule.yaml"
    schedule_path.write_text(yaml.safe_dump(SCHEDULE, sort_keys=False))
    seed_everything(args.seed, verbose=False)
    model = _classifier_class()(backbone)
    scheduler = FinetuningScheduler(ft_schedule=str(schedule_path), logging_level=logging.WARNING)
    recorder = _recorder_class()(scheduler, SCHEDULE, console)
    trainer = Trainer(
        default_root_dir=str(out),
        max_epochs=args.max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[
            FTSEarlyStopping(monitor="val_loss", patience=ES_PATIENCE, min_delta=MIN_DELTA),
            FTSCheckpoint(monitor="val_loss", dirpath=str(out / "checkpoints"), save_top_k=1),
            scheduler,
            recorder,  # after the scheduler: it sees each epoch's phase once the scheduler has moved on
        ],
    )
    generator = torch.Generator().manual_seed(args.seed)
    train = DataLoader(
        TensorDataset(data["x_train"], data["y_train"]), batch_size=BATCH_SIZE, shuffle=True, generator=generator
    )
    val = DataLoader(TensorDataset(data["x_val"], data["y_val"]), batch_size=256)
    console.start(args.max_epochs)
    try:
        trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
    finally:
        console.stop()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(data["x_val"]).argmax(dim=1) == data["y_val"]).float().mean())
    return recorder, accuracy


# ---------------------------------------------------------------------------------------------------------------
# Summary and files
# ---------------------------------------------------------------------------------------------------------------


def _phase_summary(recorder: Any) -> list[dict[str, Any]]:
    phases: list[dict[str, Any]] = []
    for phase in sorted({row["phase"] for row in recorder.rows}):
        rows = [row for row in recorder.rows if row["phase"] == phase]
        last = rows[-1]
        phases.append(
            {
                "phase": phase,
                "first_epoch": rows[0]["epoch"],
                "last_epoch": last["epoch"],
                "epochs": len(rows),
                "trainable_share": last["trainable_share"],
                "lrs": last["lrs"],
                "best_val_acc": max(row["val_acc"] for row in rows),
                "ended_by": recorder.endings.get(phase, "training ended"),
            }
        )
    return phases


def _write_outputs(
    out: Path,
    recorder: Any,
    phases: list[dict[str, Any]],
    final_acc: float,
    pretrain_acc: float,
    seconds: float,
    args: argparse.Namespace,
) -> None:
    fields = ["epoch", "phase", "trainable_params", "trainable_share", "lrs", "train_loss", "val_loss", "val_acc"]
    with (out / "trace.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in recorder.rows:
            writer.writerow({**row, "lrs": " ".join(f"{lr:.3g}" for lr in row["lrs"])})
    payload = {
        "seed": args.seed,
        "max_epochs": args.max_epochs,
        "schedule": {str(k): v for k, v in SCHEDULE.items()},
        "pretrain_val_accuracy_digits_0_4": pretrain_acc,
        "final_val_accuracy": final_acc,
        "seconds": round(seconds, 2),
        "phases": phases,
        "epochs": recorder.rows,
    }
    (out / "trace.json").write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    import sys

    sys.exit(main())
