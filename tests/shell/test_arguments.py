"""Every constructor argument of the three callbacks and the driver is checked when given: one ArgumentError that
names the argument, what it got and what it accepts (never a TypeError from inside a fit)."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping, ScheduleDriver
from finetuning_scheduler.shell.engine import ArgumentError

BAD_SCHEDULER_ARGUMENTS = [
    ("ft_schedule", [{"params": ["a"]}]),
    ("ft_schedule", 3),
    ("max_depth", "2"),
    ("max_depth", 1.0),
    ("max_depth", True),
    ("max_depth", -2),
    ("base_max_lr", "1e-5"),
    ("base_max_lr", 0),
    ("base_max_lr", -1e-3),
    ("base_max_lr", float("nan")),
    ("base_max_lr", float("inf")),
    ("base_max_lr", True),
    ("restore_best", "yes"),
    ("restore_best", 1),
    ("gen_ft_sched_only", None),
    ("epoch_transitions_only", "False"),
    ("reinit_optim_cfg", "torch.optim.SGD"),
    ("reinit_optim_cfg", {1: "x"}),
    ("reinit_lr_cfg", ["StepLR"]),
    ("strategy_adapter_cfg", "fused"),
    ("custom_strategy_adapters", ["ddp"]),
    ("custom_strategy_adapters", {"ddp": object}),
    ("allow_untested", "no"),
    ("apply_lambdas_new_pgs", 0),
    ("logging_level", "LOUD"),
    ("logging_level", -1),
    ("logging_level", 2.5),
    ("enforce_phase0_params", "True"),
    ("frozen_bn_track_running_stats", None),
    ("log_dir", 5),
    ("log_dir", ""),
]


@pytest.mark.parametrize(("name", "value"), BAD_SCHEDULER_ARGUMENTS)
def test_a_bad_scheduler_argument_is_one_clear_error_at_construction(name: str, value: Any) -> None:
    with pytest.raises(ArgumentError) as caught:
        FinetuningScheduler(**{name: value})
    message = str(caught.value)
    assert message.startswith("FinetuningScheduler: 1 invalid argument:")
    assert f"{name} must be " in message and f"got {value!r}"[:40] in message
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)


def test_every_bad_argument_is_listed_at_once() -> None:
    with pytest.raises(ArgumentError) as caught:
        FinetuningScheduler(max_depth="2", base_max_lr=-1, restore_best="yes")
    assert [p.split(" must")[0] for p in caught.value.problems] == ["max_depth", "base_max_lr", "restore_best"]


def test_good_scheduler_arguments_are_kept(tmp_path: Path) -> None:
    fts = FinetuningScheduler(
        ft_schedule=tmp_path / "s.yaml",
        max_depth=2,
        base_max_lr=1,
        logging_level="DEBUG",
        log_dir=tmp_path,
        custom_strategy_adapters={"ddp": "pkg.mod:Adapter"},
        strategy_adapter_cfg={"fused": "widen"},
    )
    assert (fts.max_depth, fts.base_max_lr, fts.logging_level) == (2, 1, "DEBUG")
    FinetuningScheduler(ft_schedule={0: {"params": ["a"]}}, max_depth=-1, logging_level=logging.WARNING)


BAD_EARLY_STOPPING = [
    ({"monitor": "val_loss", "patience": "3"}, "patience"),
    ({"monitor": "val_loss", "patience": -1}, "patience"),
    ({"monitor": "val_loss", "min_delta": "0.1"}, "min_delta"),
    ({"monitor": "val_loss", "mode": "minimum"}, "mode"),
    ({"monitor": "val_loss", "verbose": "yes"}, "verbose"),
    ({"monitor": "val_loss", "stopping_threshold": "0"}, "stopping_threshold"),
    ({"monitor": "val_loss", "check_on_train_epoch_end": 1}, "check_on_train_epoch_end"),
    ({"monitor": ""}, "monitor"),
    ({"monitor": 3}, "monitor"),
    ({"monitor": "val_loss", "patiense": 3}, "patiense"),
]


@pytest.mark.parametrize(("kwargs", "named"), BAD_EARLY_STOPPING)
def test_a_bad_early_stopping_argument_is_named(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ArgumentError, match=f"(?s)FTSEarlyStopping: 1 invalid argument:.*{named}"):
        FTSEarlyStopping(**kwargs)


BAD_CHECKPOINT = [
    ({"save_top_k": 1.5}, "save_top_k"),
    ({"save_top_k": -2}, "save_top_k"),
    ({"mode": "max_"}, "mode"),
    ({"monitor": 1}, "monitor"),
    ({"dirpath": 3}, "dirpath"),
    ({"save_last": "yes"}, "save_last"),
    ({"every_n_epochs": "1"}, "every_n_epochs"),
    ({"train_time_interval": 60}, "train_time_interval"),
    ({"save_weights_only": None}, "save_weights_only"),
    ({"filename": 7}, "filename"),
    ({"montor": "val_loss"}, "montor"),
]


@pytest.mark.parametrize(("kwargs", "named"), BAD_CHECKPOINT)
def test_a_bad_checkpoint_argument_is_named(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ArgumentError, match=f"(?s)FTSCheckpoint: 1 invalid argument:.*{named}"):
        FTSCheckpoint(**kwargs)


def test_good_callback_arguments_pass_through_to_lightning(tmp_path: Path) -> None:
    es = FTSEarlyStopping("val_loss", 0.01, 2, mode="max")
    assert (es.monitor, es.patience, es.mode) == ("val_loss", 2, "max")
    ck = FTSCheckpoint(tmp_path, monitor="val_loss", save_top_k=2, save_last="link", train_time_interval=None)
    assert ck.save_top_k == 2
    FTSCheckpoint(train_time_interval=datetime.timedelta(minutes=5), every_n_epochs=None)


BAD_DRIVER = [
    ({"module": "model"}, "module"),
    ({"schedule": [["a"]]}, "schedule"),
    ({"max_depth": "1"}, "max_depth"),
    ({"base_max_lr": 0}, "base_max_lr"),
    ({"epoch_transitions_only": "yes"}, "epoch_transitions_only"),
    ({"unscheduled": "warn"}, "unscheduled"),
    ({"generation": "fts"}, "generation"),
    ({"no_decay": "bias"}, "no_decay"),
    ({"weight_decay": -0.1}, "weight_decay"),
    ({"apply_lambdas": 1}, "apply_lambdas"),
    ({"reinit": "no"}, "reinit"),
]


@pytest.mark.parametrize(("kwargs", "named"), BAD_DRIVER)
def test_a_bad_driver_argument_is_named(kwargs: dict[str, Any], named: str) -> None:
    module = kwargs.pop("module", nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)))
    with pytest.raises(ArgumentError, match=f"(?s)ScheduleDriver: 1 invalid argument:.*{named} must be"):
        ScheduleDriver(module, **kwargs)


arbitrary = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(torch.zeros(2)),
    st.just(object()),
)
SCHEDULER_ARGUMENTS = [name for name, _ in BAD_SCHEDULER_ARGUMENTS]


@given(st.dictionaries(st.sampled_from(SCHEDULER_ARGUMENTS), arbitrary, max_size=4))
def test_any_constructor_arguments_build_the_callback_or_raise_argument_error(kwargs: dict[str, Any]) -> None:
    try:
        FinetuningScheduler(**kwargs)
    except ArgumentError as error:
        assert all(p.split(" must")[0] in kwargs for p in error.problems)
