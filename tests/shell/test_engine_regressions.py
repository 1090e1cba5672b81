"""Regressions found trying the library as a new user would, each fixed once in the phase engine (or beside it)."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, Recorder, fit_kwargs
from torch import nn

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, ScheduleDriver
from finetuning_scheduler.shell.engine import PhaseEngine, ScheduleWarning

HEAD_FIRST = {
    0: {"params": ["model.3.weight", "model.3.bias"], "max_transition_epoch": 2},
    1: {"params": ["model.2.weight", "model.2.bias"], "lr": 1e-4, "max_transition_epoch": 4},
    2: {"params": ["model.[01].*"], "lr": 1e-5, "max_transition_epoch": 4},  # max_epochs 4: never entered
}


class ThawsTheWrongLayer(BoringFTSModel):
    """A user's configure_optimizers that freezes everything itself, thaws the first layer and optimizes only it."""

    def configure_optimizers(self) -> Any:
        for param in self.parameters():
            param.requires_grad = False
        self.model[0].requires_grad_(True)
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.05)


def _fit(tmp_path: Path, model: pl.LightningModule, **fts_kwargs: Any) -> tuple[Recorder, dict[str, torch.Tensor]]:
    pl.seed_everything(7)
    start = {name: param.detach().clone() for name, param in model.named_parameters()}
    recorder = Recorder()
    fts = FinetuningScheduler(ft_schedule=HEAD_FIRST, epoch_transitions_only=True, **fts_kwargs)
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=3), callbacks=[fts, recorder])
    trainer.fit(model)
    return recorder, start


def test_phase0_is_enforced_when_configure_optimizers_thaws_the_wrong_layer(tmp_path: Path) -> None:
    model = ThawsTheWrongLayer()
    recorder, start = _fit(tmp_path, model)
    phase0 = recorder.epochs[0]
    assert phase0["trainable"] == ("model.3.weight", "model.3.bias")
    assert phase0["groups"] == (("model.3.weight", "model.3.bias"),) and phase0["lrs"] == (0.05,)
    changed = {name for name, param in model.named_parameters() if not torch.equal(param, start[name])}
    assert {"model.3.weight", "model.3.bias"} <= changed  # phase 0's parameters were trained in phase 0
    assert not {"model.0.weight", "model.0.bias"} & changed  # the layer the user thawed waits for phase 2


def test_without_enforcement_the_warning_says_what_will_train(tmp_path: Path) -> None:
    with pytest.warns(UserWarning) as caught:
        recorder, _ = _fit(tmp_path, ThawsTheWrongLayer(), enforce_phase0_params=False)
    text = "\n".join(str(w.message) for w in caught)
    assert "will not be trained in phase 0 (not in the optimizer): ['model.3.bias', 'model.3.weight']" in text
    assert "trained in phase 0 although the schedule puts them later: ['model.0.bias', 'model.0.weight']" in text
    assert "enforce_phase0_params=True" in text
    assert recorder.epochs[0]["groups"] == (("model.0.weight", "model.0.bias"),)


def test_the_callback_and_the_driver_run_the_same_engine(tmp_path: Path) -> None:
    fts = FinetuningScheduler(ft_schedule=HEAD_FIRST, epoch_transitions_only=True)
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=3), callbacks=[fts])
    trainer.fit(BoringFTSModel())
    driver = ScheduleDriver(BoringFTSModel(), HEAD_FIRST, epoch_transitions_only=True)
    assert type(fts.engine) is type(driver.engine) is PhaseEngine
    assert [(c.epoch, c.depth) for c in fts.transition_history] == [(2, 1)]


def _driver(schedule: dict[int, Any]) -> ScheduleDriver:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    driver = ScheduleDriver(model, schedule)
    driver.attach(torch.optim.SGD(driver.trainable_parameters(), lr=0.1))
    return driver


def test_driver_says_when_a_phase_can_never_end() -> None:
    driver = _driver({0: {"params": ["1.*"]}, 1: {"params": ["0.*"]}})
    with pytest.warns(ScheduleWarning, match=r"Phase 0 has no max_transition_epoch.*never reach phases 1\.\.1"):
        driver.epoch_start(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per phase, not every epoch
        driver.epoch_start(1)


def test_driver_is_silent_when_the_loop_reports_convergence_or_epochs_end_phases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reporting = _driver({0: {"params": ["1.*"]}, 1: {"params": ["0.*"]}})
        assert reporting.epoch_start(0, phase_converged=False).depth == 0
        assert reporting.epoch_start(1, phase_converged=True).depth == 1
        by_epochs = _driver({0: {"params": ["1.*"], "max_transition_epoch": 1}, 1: {"params": ["0.*"]}})
        assert [by_epochs.epoch_start(epoch).depth for epoch in range(3)] == [0, 1, 1]


def test_checkpoint_callback_loads_a_partial_state(tmp_path: Path) -> None:
    checkpoint = FTSCheckpoint(monitor="val_loss", dirpath=tmp_path / "ck")
    checkpoint.load_state_dict({"best_model_path": "best.ckpt"})  # no best_model_score, no depths
    assert checkpoint.best_model_path == "best.ckpt" and checkpoint.best_model_score is None
    moved = FTSCheckpoint(monitor="val_loss", dirpath=tmp_path / "elsewhere")
    with pytest.warns(UserWarning, match="dirpath changed"):
        moved.load_state_dict({"dirpath": str(tmp_path / "ck"), "best_ckpt_depth": 2})
    assert moved.best_model_score is None and moved.best_ckpt_depth == 2 and moved.current_ckpt_depth == 0


@pytest.mark.parametrize(
    ("module", "canonical", "names"),
    [
        ("finetuning_scheduler.fts", "finetuning_scheduler", ["FinetuningScheduler"]),
        ("finetuning_scheduler.fts_supporters", "finetuning_scheduler", ["FTSCheckpoint", "FTSEarlyStopping"]),
        (
            "finetuning_scheduler.shell.driver",
            "finetuning_scheduler.shell.integrations.driver",
            ["ScheduleDriver", "PhasePlateau", "unwrap_module", "STATE_FORMAT"],
        ),
        (
            "finetuning_scheduler.shell.torch_helpers",
            "finetuning_scheduler.shell.engine.torch_helpers",
            ["freeze", "thaw", "add_param_groups", "inventory", "extend_scheduler_state"],
        ),
        ("finetuning_scheduler.shell.demo", "finetuning_scheduler.shell.app.demo", ["main", "SCHEDULE"]),
        (
            "finetuning_scheduler.shell._naming",
            "finetuning_scheduler.shell.lightning._naming",
            ["NameTranslationError", "canonical_names", "state_dict_for_module"],
        ),
        (
            "finetuning_scheduler.shell.schedule_files",
            "finetuning_scheduler.shell.engine.schedule_files",
            ["read_schedule", "write_schedule"],
        ),
    ],
)
def test_fts_and_former_module_paths_resolve_to_the_public_objects(
    module: str, canonical: str, names: list[str]
) -> None:
    loaded, home = importlib.import_module(module), importlib.import_module(canonical)
    for name in names:
        assert getattr(loaded, name) is getattr(home, name), name


class SetsNoDecayLate(BoringFTSModel):
    """A module that decides its no_decay list in configure_optimizers, after the callback's setup."""

    def configure_optimizers(self) -> Any:
        self.no_decay = ["bias"]
        return super().configure_optimizers()


def test_no_decay_set_by_configure_optimizers_still_splits_later_phases(tmp_path: Path) -> None:
    recorder, _ = _fit(tmp_path, SetsNoDecayLate(lr_scheduler=False))
    assert recorder.epochs[2]["weight_decay"] == (1e-6, 1e-6, 0.0)  # phase 1: a decay and a no-decay group
