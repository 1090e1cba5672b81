"""The torch helpers work without Lightning, and keep optimizer and scheduler state consistent."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from finetuning_scheduler.shell.engine.torch_helpers import (
    add_param_groups,
    freeze,
    inventory,
    optimizer_problems,
    thaw,
    trainable_names,
    truncate_param_groups,
)


@pytest.mark.slow  # fresh interpreters in subprocesses
@pytest.mark.parametrize(
    ("module", "forbidden"),
    [("finetuning_scheduler.core", "torch"), ("finetuning_scheduler.shell.engine.torch_helpers", "lightning")],
)
def test_layers_load_without_heavier_dependencies(module: str, forbidden: str) -> None:
    code = (
        f"import {module}, sys; loaded = sorted(m for m in sys.modules if m.split('.')[0] == '{forbidden}'); "
        "print(loaded); assert not loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd="/")


def test_inventory_records_tied_aliases_in_registration_order() -> None:
    model = nn.Sequential(nn.Embedding(5, 4), nn.Linear(4, 5, bias=False))
    model[1].weight = model[0].weight
    found = inventory(model)
    assert found.names == ("0.weight",) and dict(found.aliases) == {"1.weight": "0.weight"}
    assert found.numels == (20,) and found.shapes == ((5, 4),) and found.modules == ("0",)


def test_groups_are_added_once_and_scheduler_state_grows() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    freeze(model)
    thaw(model, ["1.weight", "1.bias"])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    step = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    assert thaw(model, ["0.weight", "0.bias"]) == ("0.weight", "0.bias")
    added = add_param_groups(
        optimizer, model, ["0.weight", "0.bias"], 0.01, name="phase1", no_decay=["bias"], schedulers=[step, plateau]
    )
    assert added == 2 and [g["name"] for g in optimizer.param_groups[1:]] == ["phase1", "phase1/no_decay"]
    assert optimizer.param_groups[2]["weight_decay"] == 0.0
    assert step.base_lrs == [0.1, 0.01, 0.01] and len(plateau.min_lrs) == 3
    assert add_param_groups(optimizer, model, ["0.weight"], 0.01, schedulers=[step]) == 0  # replay is harmless
    assert optimizer_problems(optimizer, model) == []
    truncate_param_groups(optimizer, 1)
    assert optimizer_problems(optimizer, model) == [
        "trainable parameter 0.weight is in 0 optimizer groups (expected exactly 1)",
        "trainable parameter 0.bias is in 0 optimizer groups (expected exactly 1)",
    ]
    assert trainable_names(model) == ("0.weight", "0.bias", "1.weight", "1.bias")


def test_lambda_schedulers_scale_new_groups_only_when_asked() -> None:
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD([model.weight], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5)
    add_param_groups(optimizer, model, ["bias"], 0.2, schedulers=[scheduler], apply_lambdas=True)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.1) and len(scheduler.lr_lambdas) == 2
