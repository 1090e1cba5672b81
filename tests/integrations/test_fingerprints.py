"""A checkpoint stores the fingerprint of its schedule and model: resuming with another model is refused, with
another schedule refused unless accepted (then a warning says which phases changed). Driver and Lightning both."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, fit_kwargs
from torch import nn

from finetuning_scheduler import CheckpointMismatchError, FinetuningScheduler, FTSCheckpoint, ScheduleDriver
from finetuning_scheduler.core import (
    DETAILED_PHASES,
    ParamInventory,
    Phase,
    Schedule,
    fingerprint,
    schedule_changes,
    validate,
)

SCHEDULE = {
    0: {"params": ["2.*"], "max_transition_epoch": 1},
    1: {"params": ["1.*"], "max_transition_epoch": 3},
    2: {"params": ["0.*"], "max_transition_epoch": 5},
}


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 1))


def saved_state(schedule: Any = SCHEDULE) -> dict[str, Any]:
    driver = ScheduleDriver(net(), copy.deepcopy(schedule), epoch_transitions_only=True)
    driver.attach(torch.optim.SGD(driver.trainable_parameters(), lr=0.1))
    driver.epoch_start(0)
    return driver.state_dict()


def fresh(schedule: Any = SCHEDULE, module: nn.Module | None = None) -> ScheduleDriver:
    return ScheduleDriver(module or net(), copy.deepcopy(schedule), epoch_transitions_only=True)


def test_the_same_schedule_and_model_resume() -> None:
    fresh().load_state_dict(saved_state())


def test_another_model_is_refused_even_when_changes_are_accepted() -> None:
    wider = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 1), nn.Linear(1, 1))
    schedule = {**SCHEDULE, 2: {"params": ["0.*", "3.*"], "max_transition_epoch": 5}}
    with pytest.raises(
        CheckpointMismatchError, match=r"\(6 names then, 8 now\): this checkpoint was saved from another model"
    ):
        fresh(schedule, wider).load_state_dict(saved_state(), accept_changed_schedule=True)


def test_a_changed_schedule_is_explained_and_can_be_accepted() -> None:
    changed = {**SCHEDULE, 1: {"params": ["1.*"], "max_transition_epoch": 4}}
    with pytest.raises(CheckpointMismatchError, match=r"phase\(s\) 1 changed.*accept_changed_schedule=True"):
        fresh(changed).load_state_dict(saved_state())
    with pytest.warns(UserWarning, match=r"changed fine-tuning schedule.*phase\(s\) 1 changed"):
        fresh(changed).load_state_dict(saved_state(), accept_changed_schedule=True)


def test_a_state_without_fingerprint_from_an_earlier_version_still_resumes() -> None:
    state = saved_state()
    del state["fingerprint"]
    fresh({**SCHEDULE, 1: {**SCHEDULE[1], "lr": 1e-3}}).load_state_dict(state)


def test_fingerprints_ignore_the_order_of_a_reinitialisation_block_s_arguments_and_say_which_late_phase() -> None:
    names = [f"layer.{i}.w" for i in range(DETAILED_PHASES + 3)]
    model = ParamInventory.from_names(names)
    phases = [Phase((name,)) for name in reversed(names)]
    one = fingerprint(validate(Schedule(tuple(phases)), model).unwrap())
    later = [*phases[:-1], Phase(phases[-1].params, lr=1e-3)]
    two = fingerprint(validate(Schedule(tuple(later)), model).unwrap())
    assert len(one.as_data()["phases"]) == DETAILED_PHASES
    assert schedule_changes(one, two) == (f"a phase after phase {DETAILED_PHASES - 1} changed",)


def test_lightning_resume_with_a_changed_schedule_fails_before_training(tmp_path: Path) -> None:
    schedule = {0: {"params": ["model.3.*"]}, 1: {"params": ["model.2.*"], "max_transition_epoch": 1}}
    ck = FTSCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_last=True)
    trainer = pl.Trainer(
        callbacks=[FinetuningScheduler(ft_schedule=copy.deepcopy(schedule)), ck], **fit_kwargs(tmp_path, max_epochs=2)
    )
    trainer.fit(BoringFTSModel())
    changed = {0: schedule[0], 1: {**schedule[1], "lr": 1e-3}}
    model = BoringFTSModel()
    steps: list[int] = []

    class Steps(pl.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            steps.append(1)

    resumed = pl.Trainer(
        callbacks=[FinetuningScheduler(ft_schedule=changed), Steps()], **fit_kwargs(tmp_path / "again", max_epochs=4)
    )
    with pytest.raises(CheckpointMismatchError, match=r"phase\(s\) 1 changed"):
        resumed.fit(model, ckpt_path=str(tmp_path / "ck" / "last.ckpt"))
    assert steps == [], "no training step before the error"
    accepted = pl.Trainer(
        callbacks=[FinetuningScheduler(ft_schedule=changed, accept_changed_schedule=True)],
        **fit_kwargs(tmp_path / "accepted", max_epochs=4),
    )
    with pytest.warns(UserWarning, match="changed fine-tuning schedule"):
        accepted.fit(BoringFTSModel(), ckpt_path=str(tmp_path / "ck" / "last.ckpt"))
    assert accepted.current_epoch == 4
