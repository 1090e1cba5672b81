"""The FTS test fixture model (fts_behavior.md §8), shared by both sides of the parity harness."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torch.utils.data import DataLoader, Dataset


class RandomVectors(Dataset):  # type: ignore[type-arg]
    """``length`` standard-normal vectors of ``size``, drawn once from the seeded global RNG."""

    def __init__(self, size: int, length: int) -> None:
        self.data = torch.randn(length, size)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Any:
        return self.data[index]


class FixtureModel(LightningModule):
    """``Sequential(Linear(32, 32) x 3, Linear(32, 2))`` trained towards ones; val_loss flips target to diverge."""

    def __init__(
        self,
        diverge_on_epoch: int = 3,
        no_decay: list[str] | None = None,
        weight_decay: float = 1e-6,
        lr: float = 1e-3,
        lr_scheduler: bool | str = True,
        optimizer_params: str | None = None,
    ) -> None:
        super().__init__()
        # FTS's fixture inherits from a base model that first builds a Linear(32, 2): draw the same random numbers
        # so that the seeded weights and data match those behind fts_behavior.md §8's expected values.
        nn.Linear(32, 2)
        self.model = nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 32), nn.Linear(32, 32), nn.Linear(32, 2))
        self.diverge_on_epoch = diverge_on_epoch
        self.no_decay = no_decay
        self.weight_decay = weight_decay
        self.lr = lr
        self.use_lr_scheduler = lr_scheduler
        self.optimizer_params = optimizer_params

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        out = self(batch)
        return {"loss": nn.functional.mse_loss(out, torch.ones_like(out))}

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        out = self(batch)
        target = torch.zeros_like(out) if self.current_epoch >= self.diverge_on_epoch else torch.ones_like(out)
        loss = nn.functional.mse_loss(out, target)
        self.log("val_loss", loss)
        return {"x": loss}

    def configure_optimizers(self) -> Any:
        if self.optimizer_params is None:
            params = [p for p in self.parameters() if p.requires_grad]
        else:  # deliberately not phase 0: exercises enforce_phase0_params
            params = [p for n, p in self.named_parameters() if n.startswith(self.optimizer_params)]
        optimizer = torch.optim.SGD(params, lr=self.lr, weight_decay=self.weight_decay)
        kind = "step" if self.use_lr_scheduler is True else self.use_lr_scheduler
        if not kind:
            return optimizer
        if kind == "rlrop":  # ReduceLROnPlateau: per-group min_lrs, stepped on val_loss
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=1, min_lr=1e-7)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"}}
        if kind == "lambda":  # a linear warmup over 3 epochs: lr_lambdas, extended for new groups
            warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: min(1.0, (epoch + 1) / 3))
            return [optimizer], [warmup]
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)]

    def train_dataloader(self) -> Any:
        return DataLoader(RandomVectors(32, 64))

    def val_dataloader(self) -> Any:
        return DataLoader(RandomVectors(32, 64))
