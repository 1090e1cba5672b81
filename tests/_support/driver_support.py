"""Shared by the integration tests: load the examples as modules, a Lightning twin of the examples' model, a
plain training loop with checkpoints, and a trace format that all three trainers can be compared in."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from finetuning_scheduler.shell.integrations.driver import EpochTrace, ScheduleDriver

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

Trace = dict[int, tuple[int, tuple[str, ...], tuple[tuple[str, ...], ...], tuple[float, ...]]]
"""epoch -> (depth, trainable names, parameter names per optimizer group, group lrs rounded to 12 digits)."""


def load_example(name: str) -> ModuleType:
    """Import ``examples/{name}.py`` as a module (examples are scripts, not a package)."""
    module_name = f"fts_example_{name.replace('/', '_')}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def driver_trace(traces: Iterable[EpochTrace]) -> Trace:
    """The comparable form of a driver's epoch traces."""
    return {t.epoch: (t.depth, t.trainable, t.groups, tuple(round(lr, 12) for lr in t.lrs)) for t in traces}


def recorder_trace(epochs: Mapping[int, Mapping[str, Any]]) -> Trace:
    """The comparable form of ``fts_support.Recorder.epochs`` (a Lightning fit)."""
    return {e: (s["depth"], s["trainable"], s["groups"], s["lrs"]) for e, s in epochs.items()}


def toy_data(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Regression data for the examples' ``Net`` (8 features, 1 target)."""
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))
    return x, x.sin().sum(dim=1, keepdim=True)


def make_lightning_twin(net: nn.Module, make_optimizer: Callable[..., Any], no_decay: list[str] | None = None) -> Any:
    """A LightningModule with ``net``'s children (same parameter names) and ``make_optimizer``'s optimizer."""
    import lightning.pytorch as pl  # only the trace-equivalence test needs Lightning
    from torch.utils.data import DataLoader, TensorDataset

    class Twin(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            for name, child in net.named_children():
                self.add_module(name, child)
            self._net_forward = net.forward
            if no_decay is not None:
                self.no_decay = no_decay
            self.x, self.y = toy_data()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self._net_forward(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.mse_loss(self(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self(x), y))

        def train_dataloader(self) -> Any:
            return DataLoader(TensorDataset(self.x, self.y), batch_size=32)

        def val_dataloader(self) -> Any:
            return DataLoader(TensorDataset(self.x, self.y), batch_size=64)

        def configure_optimizers(self) -> Any:
            optimizer, scheduler = make_optimizer([p for p in self.parameters() if p.requires_grad])
            return [optimizer], [scheduler]

    return Twin()


def plain_loop(
    schedule: Any,
    epochs: int,
    *,
    checkpoints: dict[int, bytes] | None = None,
    resume: bytes | None = None,
    load_before_attach: bool = False,
    **driver_options: Any,
) -> tuple[list[EpochTrace], dict[str, torch.Tensor], ScheduleDriver]:
    """The examples' model in a plain loop, saving a checkpoint (as bytes) after each epoch when asked.

    Data order depends only on the epoch, so a resumed run sees exactly the batches the uninterrupted run saw.
    """
    import io

    example = load_example("plain_pytorch")
    torch.manual_seed(0)
    model = example.Net()
    x, y = toy_data()
    driver = ScheduleDriver(model, schedule, **driver_options)
    optimizer, scheduler = example.make_optimizer(driver.trainable_parameters())
    start = 0
    saved = None if resume is None else torch.load(io.BytesIO(resume), weights_only=True)
    if saved is not None and load_before_attach:
        driver.load_state_dict(saved["driver"])
    driver.attach(optimizer, [scheduler])
    if saved is not None:
        model.load_state_dict(saved["model"])
        if not load_before_attach:
            driver.load_state_dict(saved["driver"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        start = saved["epoch"] + 1
    traces = []
    for epoch in range(start, driver.max_epochs(epochs)):
        traces.append(driver.epoch_start(epoch))
        for batch in torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch)).split(32):
            loss = nn.functional.mse_loss(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        if checkpoints is not None:
            buffer = io.BytesIO()
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "driver": driver.state_dict(),
                "epoch": epoch,
            }
            torch.save(state, buffer)
            checkpoints[epoch] = buffer.getvalue()
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return traces, weights, driver
