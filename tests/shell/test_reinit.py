"""Optimizer and LR-scheduler reinitialisation on real CPU fits: FTS's expectations (fts_behavior.md §8 F), resume
after a reinitialising phase, and bad reinitialisation blocks found at setup, before any step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, fit_kwargs

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping, ScheduleValidationError

ADAM = {"optimizer_init": {"class_path": "torch.optim.Adam", "init_args": {"lr": 2.2e-4, "weight_decay": 1e-6}}}
STEP = {
    "lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.StepLR", "init_args": {"step_size": 1, "gamma": 0.5}}
}


class OptimizerRecorder(pl.Callback):
    """At each epoch start (after the scheduler): the optimizer class, params per group and group lrs."""

    def __init__(self) -> None:
        self.epochs: dict[int, tuple[str, tuple[int, ...], tuple[float, ...]]] = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        self.epochs[trainer.current_epoch] = (
            type(optimizer).__name__,
            tuple(len(group["params"]) for group in optimizer.param_groups),
            tuple(round(group["lr"], 12) for group in optimizer.param_groups),
        )


def _fit(
    root: Path,
    *,
    ckpt_path: str | None = None,
    max_epochs: int = 1000,
    dirpath: Path | None = None,
    diverge_on_epoch: int = 1,
    patience: int = 2,
    **fts: Any,
) -> tuple[OptimizerRecorder, dict[str, torch.Tensor]]:
    """FTS's §8 F fixture (G: diverge_on_epoch=3, patience 1): the 4-layer model, early stopping, SGD + StepLR."""
    pl.seed_everything(42)
    recorder = OptimizerRecorder()
    callbacks: list[pl.Callback] = [
        FinetuningScheduler(**fts),
        FTSEarlyStopping(monitor="val_loss", patience=patience),
        FTSCheckpoint(monitor="val_loss", dirpath=dirpath, save_top_k=-1 if dirpath else 1, filename="{epoch}"),
        recorder,
    ]
    settings = fit_kwargs(root, max_epochs=max_epochs, limit_train_batches=None, limit_val_batches=None)
    trainer = pl.Trainer(**{**settings, "enable_checkpointing": True}, callbacks=callbacks)
    model = BoringFTSModel(diverge_on_epoch=diverge_on_epoch)
    trainer.fit(model, ckpt_path=ckpt_path)
    return recorder, {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_optimizer_only_reinit_continues_the_previous_lr_trajectory(tmp_path: Path) -> None:
    recorder, _ = _fit(tmp_path, reinit_optim_cfg=ADAM)
    epochs = recorder.epochs
    assert [epochs[e][0] for e in range(4)] == ["SGD"] * 4 and epochs[4][0] == epochs[8][0] == "Adam"
    assert [epochs[e][2] for e in range(4)] == [(round(0.001 * 0.7**e, 12),) for e in range(4)]
    assert [epochs[e][1] for e in (4, 6, 8)] == [(2, 2), (2, 2, 2), (2, 2, 2, 2)]  # depth 1, 2, 3 at epochs 4, 6, 8
    assert epochs[4][2] == (0.0002401, 1e-05)  # 1e-3 * 0.7**4: the SGD schedule goes on, not Adam's 2.2e-4
    assert epochs[6][2] == (0.000117649, 4.9e-06, 1e-05)


def test_optimizer_and_scheduler_reinit_restart_from_the_new_optimizer_lr(tmp_path: Path) -> None:
    recorder, _ = _fit(tmp_path, reinit_optim_cfg=ADAM, reinit_lr_cfg=STEP)
    epochs = recorder.epochs
    assert epochs[4] == ("Adam", (2, 2), (0.00022, 1e-05))
    assert epochs[5] == ("Adam", (2, 2), (0.00011, 5e-06))
    assert epochs[6] == ("Adam", (2, 2, 2), (0.00022, 1e-05, 1e-05))


def test_use_current_optimizer_pg_lrs_keeps_the_lrs_the_groups_have(tmp_path: Path) -> None:
    recorder, _ = _fit(tmp_path, reinit_optim_cfg=ADAM, reinit_lr_cfg={**STEP, "use_current_optimizer_pg_lrs": True})
    assert recorder.epochs[6][2] == (6.0025e-05, 2.5e-06, 1e-05)


def test_a_fit_resumed_after_a_reinitialising_phase_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    cfg = {"reinit_optim_cfg": ADAM, "reinit_lr_cfg": STEP}
    twin, twin_weights = _fit(tmp_path / "twin", dirpath=tmp_path / "ck", **cfg)
    resumed, weights = _fit(tmp_path / "resumed", ckpt_path=str(tmp_path / "ck" / "epoch=6.ckpt"), **cfg)
    assert resumed.epochs == {e: state for e, state in twin.epochs.items() if e > 6}
    assert resumed.epochs[7][0] == "Adam"
    assert all(torch.equal(weights[k], twin_weights[k]) for k in twin_weights)


EXPLICIT = {
    0: {"params": ["model.3.bias", "model.3.weight"]},
    1: {"params": ["model.2.bias", "model.2.weight"]},
    2: {"params": ["model.[01].*"]},
}


@pytest.mark.parametrize(
    ("phase1", "expected"),
    [
        (
            {"new_lr_scheduler": {"lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.NoSuchLR"}}},
            r"error\[reinit-class\] phase 1 › new_lr_scheduler.lr_scheduler_init.class_path: cannot import",
        ),
        (
            {"new_lr_scheduler": {"lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.ReduceLROnPlateau"}}},
            r"error\[reinit-monitor\] phase 1 › new_lr_scheduler.pl_lrs_cfg: ReduceLROnPlateau needs",
        ),
        (
            {"new_optimizer": {"optimizer_init": {"class_path": "torch.nn.Linear"}}},
            r"error\[reinit-class\] phase 1 .*torch.nn.Linear is not a torch.optim.Optimizer",
        ),
        (
            {"new_optimizer": {"optimizer_init": {"class_path": "torch.distributed.optim.ZeroRedundancyOptimizer"}}},
            r"error\[reinit-class\] phase 1 .*ZeroRedundancyOptimizer shards its state",
        ),
        (
            {"new_optimizer": {"optimizer_init": {"class_path": "torch.optim.Adam", "init_args": {"lr": -1}}}},
            r"error\[reinit-init-args\] phase 1 › new_optimizer.optimizer_init.init_args: Adam rejects",
        ),
        (
            {"new_lr_scheduler": {"lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.StepLR",
                                  "init_args": {"step_size": 1}}, "init_pg_lrs": [1e-5, 2e-5, 3e-5]}},
            r"error\[reinit-init-pg-lrs\] phase 1 › new_lr_scheduler.init_pg_lrs: init_pg_lrs has 3 lr\(s\), but 1",
        ),
    ],
)  # fmt: skip
def test_bad_reinitialisation_blocks_are_one_located_error_before_any_step(
    tmp_path: Path, phase1: dict[str, Any], expected: str
) -> None:
    schedule_file = tmp_path / "schedule.yaml"
    import yaml

    schedule_file.write_text(yaml.safe_dump({**EXPLICIT, 1: {**EXPLICIT[1], **phase1}}), encoding="utf-8")
    steps: list[int] = []

    class CountSteps(pl.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            steps.append(1)

    fts = FinetuningScheduler(ft_schedule=str(schedule_file))
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=2), callbacks=[fts, CountSteps()])
    with pytest.raises(ScheduleValidationError, match=expected) as raised:
        trainer.fit(BoringFTSModel())
    assert str(schedule_file) in str(raised.value) and not steps


def test_reinitialisation_classes_are_reported_with_the_schedules_other_errors(tmp_path: Path) -> None:
    import yaml

    from finetuning_scheduler import ScheduleDriver, ScheduleError

    bad = {
        0: {"params": ["model.3.bias", "model.3.weight"]},
        1: {"params": ["model.nowhere.*"], "new_optimizer": {"optimizer_init": {"class_path": "torch.optim.Adamm"}}},
        2: {"params": ["model.[012].*"]},
    }
    path = tmp_path / "two_problems.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    fts = FinetuningScheduler(ft_schedule=str(path))
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=1), callbacks=[fts])
    with pytest.raises(ScheduleValidationError) as raised:
        trainer.fit(BoringFTSModel())
    codes = {d.code for d in raised.value.diagnostics}
    assert {"no-match", "reinit-class"} <= codes
    with pytest.raises(ScheduleError) as from_driver:
        ScheduleDriver(BoringFTSModel(), path)
    assert {"no-match", "reinit-class"} <= {d.code for d in from_driver.value.diagnostics}


EXPLICIT_REINIT = {
    0: {"params": ["model.3.bias", "model.3.weight"]},
    1: {
        "params": ["model.2.bias", "model.2.weight"],
        "new_optimizer": {"optimizer_init": {"class_path": "torch.optim.Adam", "init_args": {"lr": 2.1e-4}}},
        "new_lr_scheduler": STEP,
    },
    2: {
        "params": ["model.1.bias", "model.1.weight"],
        "lr": 3e-6,
        "new_optimizer": {"optimizer_init": {"class_path": "torch.optim.SGD", "init_args": {"lr": 2e-3}}},
    },
    3: {"params": ["model.0.bias", "model.0.weight"]},
}


@pytest.fixture(scope="module")
def explicit_twin(tmp_path_factory: pytest.TempPathFactory) -> tuple[OptimizerRecorder, dict[str, torch.Tensor], Path]:
    root = tmp_path_factory.mktemp("explicit_twin")
    recorder, weights = _fit(root, dirpath=root / "ck", ft_schedule=EXPLICIT_REINIT)
    return recorder, weights, root / "ck"


@pytest.mark.parametrize("epoch", [4, 5, 6, 7, 8])
def test_explicit_reinitialisation_resumes_from_any_later_epoch(explicit_twin: Any, tmp_path: Path, epoch: int) -> None:
    twin, twin_weights, ck = explicit_twin
    assert [twin.epochs[e][0] for e in (3, 4, 6)] == ["SGD", "Adam", "SGD"]
    if epoch + 1 not in twin.epochs:
        pytest.skip(f"the fit stopped before epoch {epoch + 1}")
    resumed, weights = _fit(tmp_path, ckpt_path=str(ck / f"epoch={epoch}.ckpt"), ft_schedule=EXPLICIT_REINIT)
    assert resumed.epochs == {e: state for e, state in twin.epochs.items() if e > epoch}
    assert all(torch.equal(weights[k], twin_weights[k]) for k in twin_weights)


def _lrs(recorder: OptimizerRecorder, epochs: range) -> list[tuple[float, ...]]:
    return [recorder.epochs[e][2] for e in epochs]


def test_scheduler_reinit_explicit_restarts_groups_at_their_initial_or_given_lrs(tmp_path: Path) -> None:
    step = {"lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.StepLR",
                                  "init_args": {"step_size": 1, "gamma": 0.7}}}  # fmt: skip
    warm_restarts = {
        "lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts",
                              "init_args": {"T_0": 1}},
        "init_pg_lrs": [1e-6, 2e-6],
    }  # fmt: skip
    schedule = {
        0: {"params": ["model.3.bias", "model.3.weight"]},
        1: {"params": ["model.2.bias", "model.2.weight"], "new_lr_scheduler": step},
        2: {"params": ["model.1.bias", "model.1.weight"], "lr": 3e-6, "new_lr_scheduler": warm_restarts},
        3: {"params": ["model.0.bias", "model.0.weight"]},
    }
    recorder, _ = _fit(tmp_path, ft_schedule=schedule, diverge_on_epoch=3, patience=1)
    assert _lrs(recorder, range(5)) == [(round(0.001 * 0.7**e, 12),) for e in range(5)]  # fts_behavior.md §8 G
    assert _lrs(recorder, range(5, 8)) == [(0.001, 1e-05), (1e-06, 2e-06, 3e-06), (1e-06, 2e-06, 3e-06, 1e-05)]
    assert {recorder.epochs[e][0] for e in recorder.epochs} == {"SGD"}


def test_scheduler_reinit_implicit_restarts_every_phase_at_the_initial_lrs(tmp_path: Path) -> None:
    step = {"lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.StepLR",
                                  "init_args": {"step_size": 1, "gamma": 0.7}}}  # fmt: skip
    recorder, _ = _fit(tmp_path, reinit_lr_cfg=step, diverge_on_epoch=3, patience=1)
    assert _lrs(recorder, range(5, 8)) == [(0.001, 1e-05), (0.001, 1e-05, 1e-05), (0.001, 1e-05, 1e-05, 1e-05)]


def test_restoring_a_best_checkpoint_saved_with_another_optimizer_restores_its_weights_only(tmp_path: Path) -> None:
    adam_then_on = {
        **EXPLICIT_REINIT,
        2: {"params": ["model.1.bias", "model.1.weight"], "lr": 3e-6},  # keeps phase 1's Adam
    }
    with pytest.warns(UserWarning, match="saved in phase 0 with SGD, but Adam is in use: restoring its weights only"):
        recorder, _ = _fit(tmp_path, ft_schedule=adam_then_on)  # the best checkpoint stays in phase 0 (SGD)
    assert [recorder.epochs[e][0] for e in (3, 4, 6, 8)] == ["SGD", "Adam", "Adam", "Adam"]
    assert recorder.epochs[8][1] == (2, 2, 2, 2)


def test_implicit_scheduler_settings_are_checked_at_setup(tmp_path: Path) -> None:
    cfg = {**STEP, "pl_lrs_cfg": {"interval": "stepp", "frequency": 0}}
    fts = FinetuningScheduler(reinit_lr_cfg=cfg)
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=1), callbacks=[fts])
    with pytest.raises(ScheduleValidationError, match=r"reinit_lr_cfg.pl_lrs_cfg: interval must be 'epoch' or 'step'"):
        trainer.fit(BoringFTSModel())


def test_per_group_scheduler_arguments_are_not_rejected_by_the_trial_build(tmp_path: Path) -> None:
    from finetuning_scheduler import ScheduleDriver

    rlrop = {
        "lr_scheduler_init": {
            "class_path": "torch.optim.lr_scheduler.ReduceLROnPlateau",
            "init_args": {"min_lr": [0.0, 0.0, 0.0]},  # one per group that will exist
        },
    }
    schedule = {**EXPLICIT, 2: {**EXPLICIT[2], "new_lr_scheduler": rlrop}}
    driver = ScheduleDriver(BoringFTSModel(), schedule)  # the driver steps schedulers itself: no monitor needed
    assert driver.resolved.phases[2].new_lr_scheduler is not None


def _schedule_naming(tmp_path: Path, class_path: str) -> Path:
    import yaml

    phase1 = {**EXPLICIT[1], "new_optimizer": {"optimizer_init": {"class_path": class_path}}}
    path = tmp_path / "untrusted.yaml"
    path.write_text(yaml.safe_dump({**EXPLICIT, 1: phase1}), encoding="utf-8")
    return path


def _module_recording_its_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """A module on sys.path (a fresh name: never in sys.modules yet) that leaves a file behind when imported."""
    import uuid

    name, marker = f"untrusted_optim_{uuid.uuid4().hex[:8]}", tmp_path / "imported"
    (tmp_path / f"{name}.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\nfrom torch.optim import SGD as Optimizer\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, marker


def test_a_class_outside_the_allowed_modules_is_an_error_and_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetuning_scheduler import ScheduleDriver, ScheduleError

    name, marker = _module_recording_its_import(tmp_path, monkeypatch)
    path = _schedule_naming(tmp_path, f"{name}.Optimizer")
    fts = FinetuningScheduler(ft_schedule=str(path), allowed_class_prefixes=["torch.optim"])
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=2), callbacks=[fts])
    with pytest.raises(ScheduleValidationError) as raised:
        trainer.fit(BoringFTSModel())
    message = str(raised.value)
    assert "reinit-class-not-allowed" in message and f"{path}:" in message
    assert "phase 1 › new_optimizer.optimizer_init.class_path" in message and "allowed_class_prefixes" in message
    with pytest.raises(ScheduleError, match="reinit-class-not-allowed"):
        ScheduleDriver(BoringFTSModel(), path, allowed_class_prefixes=("torch.optim",))
    assert not marker.exists(), "the untrusted module was imported"


def test_an_allowed_module_is_imported_and_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name, marker = _module_recording_its_import(tmp_path, monkeypatch)
    path = _schedule_naming(tmp_path, f"{name}.Optimizer")
    fts = FinetuningScheduler(ft_schedule=str(path), allowed_class_prefixes=["torch.", name])
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=1), callbacks=[fts])
    trainer.fit(BoringFTSModel())
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("bad", ["torch.optim", [""], [3], {"torch": 1}])
def test_allowed_class_prefixes_must_be_a_list_of_module_prefixes(bad: Any) -> None:
    from finetuning_scheduler import ArgumentError

    with pytest.raises(ArgumentError, match="allowed_class_prefixes must be None or a list of module prefixes"):
        FinetuningScheduler(allowed_class_prefixes=bad)
