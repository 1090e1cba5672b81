"""Fine-tune in phases with Lightning Fabric: the same driver as in a plain loop, with Fabric's checkpoints.

Run it with ``python examples/fabric_loop.py`` (CPU, a few seconds). It trains 8 epochs saving a checkpoint after
each, then resumes from the epoch-3 checkpoint and shows that the resumed run continues exactly as the first did.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric import Fabric
from torch import nn

from finetuning_scheduler import EpochTrace, ScheduleDriver

SCHEDULE: dict[int, Any] = {
    0: {"params": ["head.*"], "max_transition_epoch": 2},
    1: {"params": ["body.2.*"], "lr": 0.005, "max_transition_epoch": 4},
    2: {"params": ["body.0.*"], "lr": 0.002, "max_transition_epoch": 6},
}


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh())
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def make_optimizer(params: Iterable[nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.AdamW(params, lr=0.01)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.8)


def train(
    schedule: Any = SCHEDULE,
    epochs: int = 8,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    log: Callable[[str], Any] = print,
) -> tuple[list[EpochTrace], dict[str, torch.Tensor]]:
    """Train phase by phase; returns each epoch's trace and the final weights."""
    fabric = Fabric(accelerator="cpu", devices=1)
    fabric.seed_everything(0, verbose=False)
    x = torch.randn(512, 8)
    y = x.sin().sum(dim=1, keepdim=True)
    model = Net()
    # The driver gets the model before fabric.setup wraps it (the wrapper prefixes parameter names).
    driver = ScheduleDriver(model, schedule, epoch_transitions_only=True)
    optimizer, scheduler = make_optimizer(driver.trainable_parameters())
    model, optimizer = fabric.setup(model, optimizer)
    driver.attach(optimizer, [scheduler])
    x, y = fabric.to_device((x, y))
    # "driver" comes before "optimizer": loading it first rebuilds the groups the saved optimizer state needs.
    state: dict[str, Any] = {"driver": driver, "model": model, "optimizer": optimizer, "scheduler": scheduler}
    start = 0
    if resume_from is not None:
        remainder = fabric.load(resume_from, state)  # restores the objects in place, returns the rest
        start = remainder["epoch"] + 1
    traces = []
    for epoch in range(start, driver.max_epochs(epochs)):
        trace = driver.epoch_start(epoch)
        traces.append(trace)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for batch in order.split(32):
            loss = nn.functional.mse_loss(model(x[batch]), y[batch])
            optimizer.zero_grad()
            fabric.backward(loss)
            optimizer.step()
        scheduler.step()
        log(f"epoch {epoch}: phase {trace.depth}, {len(trace.trainable)} trainable, {len(trace.lrs)} groups")
        if checkpoint_dir is not None:
            fabric.save(Path(checkpoint_dir) / f"epoch={epoch}.ckpt", {**state, "epoch": epoch})
    weights = {name: value.detach().clone() for name, value in model.state_dict().items()}
    return traces, weights


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        print("-- uninterrupted run")
        _, uninterrupted = train(checkpoint_dir=folder)
        print("-- resumed from the epoch-3 checkpoint")
        _, resumed = train(resume_from=Path(folder) / "epoch=3.ckpt")
        same = all(torch.equal(uninterrupted[name], resumed[name]) for name in uninterrupted)
        print(f"resumed run ends with the same weights: {same}")
