"""One schedule, three trainers: the Lightning callback, a plain PyTorch loop and Lightning Fabric thaw the same
parameters at the same epochs, with the same optimizer groups and learning rates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from driver_support import (
    driver_trace,
    load_example,
    make_lightning_twin,
    plain_loop,
    recorder_trace,
)
from fts_support import Recorder, fit_kwargs
from lightning.fabric import Fabric

from finetuning_scheduler import FinetuningScheduler, ScheduleDriver

pytestmark = [
    # Expected: the "crowded" schedule repeats an epoch on purpose, and Lightning announces the final phase's epoch.
    pytest.mark.filterwarnings("ignore:.*max-transition-epoch-not-increasing"),
    pytest.mark.filterwarnings("ignore:The final phase has max_transition_epoch"),
]

plain = load_example("plain_pytorch")
fabric = load_example("fabric_loop")

# The second schedule exercises the default lr (base_max_lr), exact names, and two phases due at the same epoch
# (the core moves at most one phase per epoch, so phase 2 starts one epoch after phase 1).
SCHEDULES: dict[str, dict[int, Any]] = {
    "example": plain.SCHEDULE,
    "crowded": {
        0: {"params": ["head.weight", "head.bias"], "max_transition_epoch": 1},
        1: {"params": ["body.2.weight", "body.2.bias"], "max_transition_epoch": 1},
        2: {"params": ["body.0.*"], "lr": 3e-3, "max_transition_epoch": 3},
    },
}
EPOCHS = 6


def _lightning(tmp_path: Path, schedule: dict[int, Any], no_decay: list[str] | None = None, **fts: Any) -> Recorder:
    pl.seed_everything(0, verbose=False)
    recorder = Recorder()
    model = make_lightning_twin(plain.Net(), plain.make_optimizer, no_decay=no_decay)
    callbacks = [FinetuningScheduler(schedule, epoch_transitions_only=True, restore_best=False, **fts), recorder]
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=EPOCHS), callbacks=callbacks)
    trainer.fit(model)
    return recorder


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_lightning_plain_and_fabric_give_the_same_trace(tmp_path: Path, name: str) -> None:
    schedule = SCHEDULES[name]
    lightning = recorder_trace(_lightning(tmp_path, schedule).epochs)
    plain_traces = plain.train(schedule, epochs=EPOCHS, log=lambda _: None)
    fabric_traces, _ = fabric.train(schedule, epochs=EPOCHS, log=lambda _: None)

    assert driver_trace(plain_traces) == lightning
    assert driver_trace(fabric_traces) == lightning
    # The comparison is not vacuous: every epoch ran and the schedule went all the way down.
    assert sorted(lightning) == list(range(EPOCHS))
    assert lightning[EPOCHS - 1][0] == 2
    assert len({state[0] for state in lightning.values()}) == 3


def test_no_decay_and_max_depth_match_lightning(tmp_path: Path) -> None:
    schedule = SCHEDULES["example"]
    lightning = _lightning(tmp_path, schedule, no_decay=["bias"], max_depth=1)
    traces, _, _ = plain_loop(schedule, EPOCHS, epoch_transitions_only=True, no_decay=["bias"], max_depth=1)

    assert driver_trace(traces) == recorder_trace(lightning.epochs)
    last = lightning.epochs[EPOCHS - 1]
    assert last["depth"] == 1  # max_depth stops the schedule at phase 1
    assert last["groups"][1:] == (("body.2.weight",), ("body.2.bias",))  # phase1 and phase1/no_decay
    assert last["weight_decay"][2] == 0.0


def test_fabric_resume_continues_exactly(tmp_path: Path) -> None:
    traces, weights = fabric.train(SCHEDULES["example"], epochs=EPOCHS, checkpoint_dir=tmp_path, log=lambda _: None)
    resumed, resumed_weights = fabric.train(
        SCHEDULES["example"], epochs=EPOCHS, resume_from=tmp_path / "epoch=2.ckpt", log=lambda _: None
    )
    assert driver_trace(resumed) == {e: s for e, s in driver_trace(traces).items() if e > 2}
    assert resumed[0].depth == 1  # resumed inside phase 1: the driver rebuilt its group before the optimizer loaded
    assert all(torch.equal(resumed_weights[k], weights[k]) for k in weights)


def test_the_driver_unwraps_a_fabric_module() -> None:
    model = plain.Net()
    wrapped, _ = Fabric(accelerator="cpu", devices=1).setup(model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert next(iter(dict(wrapped.named_parameters()))).startswith("_forward_module.")
    driver = ScheduleDriver(wrapped, SCHEDULES["example"])
    assert driver.module is model
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
