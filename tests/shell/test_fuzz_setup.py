"""Fuzzing the callback end to end: Hypothesis builds schedules (as dicts, as YAML files, or as arbitrary text) and
constructor arguments, valid and not, and runs a real ``Trainer.fit`` of a small model with the three callbacks.

Whatever comes in, only three things may happen: the constructor raises ``ArgumentError``, setup raises
``ScheduleValidationError`` whose every error is located (a phase and key, or the schedule as a whole, and the file
for a schedule read from one), or the fit trains. Anything else (a ``TypeError`` from inside the library, a
``KeyError``, a raw ``yaml`` error) fails the test.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import yaml
from fts_support import BoringFTSModel, fit_kwargs
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from finetuning_scheduler import (
    ArgumentError,
    FinetuningScheduler,
    FTSCheckpoint,
    FTSEarlyStopping,
    ScheduleValidationError,
)

NAMES = [f"model.{i}.{kind}" for i in range(4) for kind in ("weight", "bias")]
ENTRIES = st.one_of(
    st.sampled_from([*NAMES, "model.3.*", r"model\.[012]\..*", "model.*", "nowhere", "(", ""]), st.text(max_size=6)
)
# Scalars of the kinds a YAML file can hold, including the ones that are wrong almost everywhere.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True), st.text(max_size=4), st.just(float("inf"))
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
CLASS_BLOCK = st.fixed_dictionaries(
    {
        "class_path": st.sampled_from(
            ["torch.optim.SGD", "torch.optim.Adamm", "torch.optim.lr_scheduler.StepLR", "os.system", "nope"]
        )
    },
    optional={
        "init_args": st.dictionaries(
            st.sampled_from(["lr", "step_size", "gamma", "momentum", "bogus"]), SCALARS, max_size=2
        )
    },
)
PHASE = st.fixed_dictionaries(
    {},
    optional={
        "params": st.one_of(st.lists(ENTRIES, max_size=4), VALUES),
        "max_transition_epoch": st.one_of(st.integers(-2, 4), SCALARS),
        "lr": st.one_of(st.floats(1e-6, 1e-2), SCALARS),
        "new_optimizer": st.one_of(st.fixed_dictionaries({"optimizer_init": CLASS_BLOCK}), VALUES),
        "new_lr_scheduler": st.one_of(st.fixed_dictionaries({"lr_scheduler_init": CLASS_BLOCK}), VALUES),
        "unknown_key": VALUES,
    },
)
SCHEDULES = st.dictionaries(st.one_of(st.integers(-1, 4), st.text(max_size=2)), st.one_of(PHASE, VALUES), max_size=4)
ARGUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "max_depth": st.one_of(st.integers(-2, 4), SCALARS),
        "base_max_lr": st.one_of(st.floats(1e-6, 1e-2), SCALARS),
        "restore_best": st.one_of(st.booleans(), SCALARS),
        "epoch_transitions_only": st.one_of(st.booleans(), SCALARS),
        "enforce_phase0_params": st.booleans(),
        "allowed_class_prefixes": st.one_of(
            st.none(), st.lists(st.sampled_from(["torch.optim", "", "os"]), max_size=2)
        ),
        "reinit_optim_cfg": st.one_of(st.none(), st.fixed_dictionaries({"optimizer_init": CLASS_BLOCK}), VALUES),
    },
)
GOOD_ARGUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "max_depth": st.integers(-1, 4),
        "base_max_lr": st.floats(1e-6, 1e-2),
        "restore_best": st.booleans(),
        "epoch_transitions_only": st.booleans(),
        "allowed_class_prefixes": st.one_of(st.none(), st.just(["torch.optim"])),
    },
)


@st.composite
def near_valid_schedules(draw: st.DrawFn) -> dict[Any, Any]:
    """The model's names cut into phases in some order, then at most one field set to anything at all."""
    names = draw(st.permutations(NAMES))
    cuts = sorted(draw(st.sets(st.integers(1, len(names) - 1), max_size=3)))
    bounds = [0, *cuts, len(names)]
    schedule: dict[Any, Any] = {i: {"params": names[a:b]} for i, (a, b) in enumerate(itertools.pairwise(bounds))}
    for phase in schedule.values():
        if draw(st.booleans()):
            phase["max_transition_epoch"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        phase = schedule[draw(st.sampled_from(sorted(schedule)))]
        phase[draw(st.sampled_from(list(PHASE_KEYS)))] = draw(PHASE_KEYS[draw(st.sampled_from(list(PHASE_KEYS)))])
    return schedule


PHASE_KEYS = {
    "params": st.lists(ENTRIES, max_size=3),
    "max_transition_epoch": SCALARS,
    "lr": SCALARS,
    "new_optimizer": st.fixed_dictionaries({"optimizer_init": CLASS_BLOCK}),
    "new_lr_scheduler": st.fixed_dictionaries({"lr_scheduler_init": CLASS_BLOCK}),
}
_runs = itertools.count()


def _given_as(kind: str, schedule: dict[Any, Any], text: str, folder: Path) -> Any:
    """The schedule as a dict, as a YAML file of the same dict, or arbitrary text in a file."""
    if kind == "dict":
        return schedule
    path = folder / "schedule.yaml"
    path.write_text(yaml.safe_dump(schedule) if kind == "yaml" else text, encoding="utf-8")
    return str(path)


def _located(error: ScheduleValidationError, source: Any) -> None:
    """Every error of a phase read from a file names the file, line and column; the others are the schedule's as a
    whole or a constructor argument's (``reinit_optim_cfg``), which have no place in the file."""
    errors = [d for d in error.diagnostics if d.is_error]
    assert errors, "a ScheduleValidationError holds at least one error"
    for diagnostic in errors:
        if isinstance(source, str) and diagnostic.location.phase is not None:
            assert diagnostic.source == source and diagnostic.position is not None, diagnostic.render()


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["dict", "yaml", "text"]),
    schedule=st.one_of(near_valid_schedules(), SCHEDULES),
    text=st.text(max_size=80),
    arguments=st.one_of(GOOD_ARGUMENTS, ARGUMENTS),
)
def test_any_schedule_and_arguments_end_in_a_located_error_or_a_fit(
    tmp_path: Path, kind: str, schedule: dict[Any, Any], text: str, arguments: dict[str, Any]
) -> None:
    folder = tmp_path / f"run{next(_runs)}"
    folder.mkdir()
    source = _given_as(kind, schedule, text, folder)
    try:
        fts = FinetuningScheduler(ft_schedule=source, **arguments)
    except ArgumentError:
        event("ArgumentError at construction")
        return
    callbacks = [
        fts,
        FTSEarlyStopping(monitor="val_loss", patience=1),
        FTSCheckpoint(monitor="val_loss", dirpath=folder),
    ]
    trainer = pl.Trainer(
        **fit_kwargs(folder, max_epochs=2, limit_train_batches=1, limit_val_batches=1), callbacks=callbacks
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # schedule warnings are expected here; errors are what is checked
            trainer.fit(BoringFTSModel())
    except ScheduleValidationError as error:
        _located(error, source)
        event("ScheduleValidationError at setup")
        return
    assert trainer.current_epoch >= 1  # it trained
    event("trained")
