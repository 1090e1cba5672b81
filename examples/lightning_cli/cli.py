"""Fine-tuning from the command line with Lightning's ``LightningCLI``: the scheduler and its callbacks are
configured in YAML, like any Lightning callback.

Run it from the repository root (CPU, seconds; needs ``jsonargparse``, in the ``cli`` extra)::

    python examples/lightning_cli/cli.py fit --config examples/lightning_cli/config.yaml

or add the scheduler on the command line to any config::

    python examples/lightning_cli/cli.py fit --trainer.max_epochs=6 \\
        --trainer.callbacks+=FinetuningScheduler \\
        --trainer.callbacks.ft_schedule=examples/lightning_cli/schedule.yaml

The model is a small classifier of fixed random data (nothing is downloaded).
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# Imported, the callbacks can be named on the command line by class name alone (LightningCLI finds a callback by its
# short name among the subclasses of Callback that are loaded).
from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping  # noqa: F401


class Classifier(pl.LightningModule):
    """An encoder of ``depth`` layers and a head, on a fixed synthetic task."""

    def __init__(self, width: int = 32, depth: int = 3, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = nn.Sequential(*(nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(depth)))
        self.head = nn.Linear(width, 2)
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(256, width, generator=generator)
        self.y = (self.x[:, 0] * self.x[:, 1] > 0).long()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y), prog_bar=True)

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(self.x[:192], self.y[:192]), batch_size=32)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(TensorDataset(self.x[192:], self.y[192:]), batch_size=64)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=self.hparams["lr"])


def main(args: list[str] | None = None) -> LightningCLI:
    return LightningCLI(Classifier, args=args, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
