"""Every LR scheduler in torch.optim.lr_scheduler follows a param group added mid-training (as a phase adds one)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as lrs

from finetuning_scheduler.shell.engine import SUPPORTED_LR_SCHEDULERS, add_param_groups, optimizer_problems

Build = Callable[[torch.optim.Optimizer], Any]

# One configuration per class; every public scheduler class of the installed torch must appear here.
BUILDERS: dict[str, Build] = {
    "LambdaLR": lambda opt: lrs.LambdaLR(opt, lambda epoch: 0.9**epoch),
    "MultiplicativeLR": lambda opt: lrs.MultiplicativeLR(opt, lambda epoch: 0.9),
    "StepLR": lambda opt: lrs.StepLR(opt, step_size=2, gamma=0.5),
    "MultiStepLR": lambda opt: lrs.MultiStepLR(opt, milestones=[2, 5, 7], gamma=0.5),
    "ConstantLR": lambda opt: lrs.ConstantLR(opt, factor=0.5, total_iters=6),
    "LinearLR": lambda opt: lrs.LinearLR(opt, start_factor=0.2, total_iters=8),
    "ExponentialLR": lambda opt: lrs.ExponentialLR(opt, gamma=0.8),
    # Within T_max the schedule is a pure ratio of the previous lr; at a restart it adds the group's base lr.
    "CosineAnnealingLR": lambda opt: lrs.CosineAnnealingLR(opt, T_max=20),
    "CosineAnnealingWarmRestarts": lambda opt: lrs.CosineAnnealingWarmRestarts(opt, T_0=3),
    "PolynomialLR": lambda opt: lrs.PolynomialLR(opt, total_iters=12, power=2.0),
    "CyclicLR": lambda opt: lrs.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=3),
    "OneCycleLR": lambda opt: lrs.OneCycleLR(opt, max_lr=0.1, total_steps=20),
    "ReduceLROnPlateau": lambda opt: lrs.ReduceLROnPlateau(opt, factor=0.5, patience=0),
    "SequentialLR": lambda opt: lrs.SequentialLR(
        opt, [lrs.ConstantLR(opt, factor=0.5, total_iters=3), lrs.ExponentialLR(opt, gamma=0.8)], milestones=[3]
    ),
    "ChainedScheduler": lambda opt: lrs.ChainedScheduler(
        [lrs.StepLR(opt, step_size=2, gamma=0.5), lrs.ExponentialLR(opt, gamma=0.9)]
    ),
}
ADDED_AT, STEPS = 4, 12


def _scheduler_classes() -> set[str]:
    return {
        name
        for name, value in vars(lrs).items()
        if inspect.isclass(value)
        and not name.startswith("_")
        and value is not lrs.LRScheduler
        and (issubclass(value, lrs.LRScheduler) or value is lrs.ReduceLROnPlateau)
        and value.__module__ == lrs.__name__
    }


def test_every_torch_scheduler_class_is_covered() -> None:
    assert _scheduler_classes() <= set(BUILDERS), sorted(_scheduler_classes() - set(BUILDERS))
    unsupported = [name for name in _scheduler_classes() if not issubclass(getattr(lrs, name), SUPPORTED_LR_SCHEDULERS)]
    assert not unsupported  # each follows new groups (tested below), so none needs allow_untested


def _step(scheduler: Any, optimizer: torch.optim.Optimizer) -> None:
    optimizer.step()
    if isinstance(scheduler, lrs.ReduceLROnPlateau):
        scheduler.step(1.0)  # never improves: the lr is cut every epoch
    else:
        scheduler.step()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_a_group_added_mid_training_follows_the_schedule(name: str) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model[1].parameters(), lr=0.1, momentum=0.9)
    scheduler = BUILDERS[name](optimizer)
    ratios: list[float] = []
    first_lrs: list[float] = []
    for step in range(STEPS):
        if step == ADDED_AT:
            model[0].requires_grad_(True)
            assert add_param_groups(optimizer, model, ["0.weight", "0.bias"], 0.02, schedulers=[scheduler]) == 1
            assert optimizer_problems(optimizer, model, [scheduler]) == []
            assert len(scheduler.get_last_lr()) == 2
        if step > ADDED_AT:
            old, new = (group["lr"] for group in optimizer.param_groups)
            ratios.append(new / old)
            first_lrs.append(new)
        _step(scheduler, optimizer)
    # The new group moves with the schedule (its lr changes) and in proportion to the first group's.
    assert len(set(first_lrs)) > 1, f"{name}: the new group's lr never changed: {first_lrs}"
    assert all(math.isclose(ratio, ratios[0], rel_tol=1e-6) for ratio in ratios), f"{name}: {ratios}"


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_an_extended_scheduler_state_round_trips(name: str) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model[1].parameters(), lr=0.1, momentum=0.9)
    scheduler = BUILDERS[name](optimizer)
    _step(scheduler, optimizer)
    model[0].requires_grad_(True)
    add_param_groups(optimizer, model, ["0.weight", "0.bias"], 0.02, schedulers=[scheduler])
    _step(scheduler, optimizer)
    state = scheduler.state_dict()
    fresh_optimizer = torch.optim.SGD(model[1].parameters(), lr=0.1, momentum=0.9)
    fresh = BUILDERS[name](fresh_optimizer)
    add_param_groups(fresh_optimizer, model, ["0.weight", "0.bias"], 0.02, schedulers=[fresh])
    fresh.load_state_dict(state)
    fresh_optimizer.load_state_dict(optimizer.state_dict())
    _step(scheduler, optimizer)
    _step(fresh, fresh_optimizer)
    assert [g["lr"] for g in fresh_optimizer.param_groups] == pytest.approx([g["lr"] for g in optimizer.param_groups])
