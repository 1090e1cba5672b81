"""Fine-tune in phases from a plain PyTorch loop: the driver says when each phase starts, your loop trains.

Run it with ``python examples/plain_pytorch.py`` (CPU, a few seconds; needs torch and this package, not Lightning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from finetuning_scheduler import EpochTrace, ScheduleDriver

# Phase 0 trains the head; each later phase thaws more of the body, with its own learning rate.
SCHEDULE: dict[int, Any] = {
    0: {"params": ["head.*"], "max_transition_epoch": 2},
    1: {"params": ["body.2.*"], "lr": 0.005, "max_transition_epoch": 4},
    2: {"params": ["body.0.*"], "lr": 0.002, "max_transition_epoch": 6},
}


class Net(nn.Module):
    """A pretrained body and a new head (here: random weights, for the example)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh())
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def make_optimizer(params: Iterable[nn.Parameter]) -> tuple[torch.optim.Optimizer, Any]:
    """The phase-0 optimizer and its LR scheduler; later phases add their own parameter groups to them."""
    optimizer = torch.optim.AdamW(params, lr=0.01)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.8)


def train(schedule: Any = SCHEDULE, epochs: int = 8, log: Callable[[str], Any] = print) -> list[EpochTrace]:
    """Train ``Net`` on a toy regression task, phase by phase; returns what each epoch looked like."""
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = x.sin().sum(dim=1, keepdim=True)
    model = Net()
    driver = ScheduleDriver(model, schedule, epoch_transitions_only=True)  # freezes all but phase 0
    optimizer, scheduler = make_optimizer(driver.trainable_parameters())
    driver.attach(optimizer, [scheduler])
    traces = []
    for epoch in range(driver.max_epochs(epochs)):
        trace = driver.epoch_start(epoch)  # thaws the next phase and adds its param groups when it is due
        traces.append(trace)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        losses = []
        for batch in order.split(32):
            loss = nn.functional.mse_loss(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        lrs, mean = ", ".join(f"{lr:.2g}" for lr in trace.lrs), sum(losses) / len(losses)
        log(f"epoch {epoch}: phase {trace.depth}, {len(trace.trainable)} trainable, lrs [{lrs}], loss {mean:.3f}")
    return traces


if __name__ == "__main__":
    train()
