"""Shared by the shell tests: tiny models, fixed data and a recording callback for real Lightning fits on CPU."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from finetuning_scheduler import FinetuningScheduler


class RandomDataset(Dataset[torch.Tensor]):
    """Fixed random vectors: the same data in every run, so fits are comparable."""

    def __init__(self, size: int, length: int, seed: int = 0) -> None:
        self.data = torch.randn(length, size, generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.data[index]


class BoringFTSModel(pl.LightningModule):
    """FTS's test fixture: 4 linear layers, SGD + StepLR, a validation loss that diverges after an epoch."""

    def __init__(
        self,
        diverge_on_epoch: int = 3,
        lr_scheduler: bool = True,
        no_decay: list[str] | None = None,
        all_params_in_optimizer: bool = False,
        batch_size: int = 1,
        length: int = 64,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 32), nn.Linear(32, 32), nn.Linear(32, 2))
        self.diverge_on_epoch = diverge_on_epoch
        self.use_scheduler = lr_scheduler
        self.all_params_in_optimizer = all_params_in_optimizer
        self.batch_size = batch_size
        self.length = length
        self.lr = lr
        if no_decay is not None:
            self.no_decay = no_decay

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return nn.functional.mse_loss(self(batch), torch.ones(batch.shape[0], 2, device=batch.device))

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        target = torch.ones if self.current_epoch < self.diverge_on_epoch else torch.zeros
        self.log("val_loss", nn.functional.mse_loss(self(batch), target(batch.shape[0], 2, device=batch.device)))

    def train_dataloader(self) -> DataLoader[torch.Tensor]:
        return DataLoader(RandomDataset(32, self.length, seed=1), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader[torch.Tensor]:
        return DataLoader(RandomDataset(32, self.length, seed=2), batch_size=self.batch_size)

    def configure_optimizers(self) -> Any:
        params = (
            self.parameters() if self.all_params_in_optimizer else [p for p in self.parameters() if p.requires_grad]
        )
        optimizer = torch.optim.SGD(params, lr=self.lr, weight_decay=1e-6)
        if not self.use_scheduler:
            return optimizer
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)]


class Recorder(pl.Callback):
    """Records, at each epoch start (after the scheduler's own hook), what the fit looks like."""

    def __init__(self) -> None:
        self.epochs: dict[int, dict[str, Any]] = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fts = next(cb for cb in trainer.callbacks if isinstance(cb, FinetuningScheduler))
        by_id = {id(p): n for n, p in pl_module.named_parameters()}
        groups = trainer.optimizers[0].param_groups
        self.epochs[trainer.current_epoch] = {
            "depth": fts.curr_depth,
            "depth_remaining": fts.depth_remaining,
            "trainable": tuple(n for n, p in pl_module.named_parameters() if p.requires_grad),
            "groups": tuple(tuple(by_id[id(p)] for p in g["params"]) for g in groups),
            "lrs": tuple(round(g["lr"], 12) for g in groups),
            "weight_decay": tuple(g["weight_decay"] for g in groups),
        }


def fit_kwargs(tmp_path: Any, **overrides: Any) -> dict[str, Any]:
    """Fast, quiet Trainer settings for CPU runs (never fast_dev_run: it forbids transitions)."""
    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 12,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "default_root_dir": str(tmp_path),
        "limit_train_batches": 8,
        "limit_val_batches": 4,
    }
    settings.update(overrides)
    return settings


def process_failure(stderr: str) -> str:
    """What a failed subprocess said that matters: its error and traceback lines, then the end of its output."""
    lines = [line for line in stderr.splitlines() if any(k in line for k in ("Error", "error[", "Traceback"))]
    return "\n".join(lines[:40]) + "\n...\n" + stderr[-1500:]


def end_process_group() -> None:
    """Destroy the default process group before the interpreter exits: Lightning leaves it alive after a fit, and
    gloo's threads then sometimes abort the exiting process ("terminate called without an active exception")."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def run_and_exit(main: Any, *args: Any) -> None:
    """Run a distributed fit script's ``main``; once it has returned (its results written), leave at once.

    Interpreter teardown after a gloo fit sometimes aborts ("terminate called without an active exception", about
    one run in eight, even with the process group destroyed), which would fail a test whose fit succeeded. An
    exception from ``main`` still propagates with its traceback and a non-zero status.
    """
    import os
    import sys

    main(*args)
    end_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
