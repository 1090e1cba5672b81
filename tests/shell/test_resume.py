"""Exact resume: a fit resumed from any checkpoint continues exactly as the uninterrupted fit did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, Recorder, fit_kwargs
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from finetuning_scheduler import CheckpointMismatchError, FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

SCHEDULE = {
    0: {"params": ["model.3.bias", "model.3.weight"]},
    1: {"params": ["model.2.*"], "lr": 1e-4},
    2: {"params": ["model.1.*", "model.0.*"], "lr": 1e-5},
}
EPOCH_SCHEDULE = {
    0: {"params": ["model.3.bias", "model.3.weight"], "max_transition_epoch": 2},
    1: {"params": ["model.2.*"], "lr": 1e-4, "max_transition_epoch": 4},
    2: {"params": ["model.1.*", "model.0.*"], "lr": 1e-5, "max_transition_epoch": 4},
}


def _fit(
    root: Path,
    dirpath: Path,
    *,
    schedule: dict[Any, Any],
    max_epochs: int,
    ckpt_path: str | None = None,
    restore_best: bool = True,
    epochs_only: bool = False,
    diverge_on_epoch: int = 3,
    strategy: Any = "auto",
    accept_changed_schedule: bool = False,
) -> tuple[Recorder, dict[str, torch.Tensor], Any]:
    pl.seed_everything(7)
    recorder = Recorder()
    callbacks: list[pl.Callback] = [
        FinetuningScheduler(
            ft_schedule=schedule,
            restore_best=restore_best,
            epoch_transitions_only=epochs_only,
            accept_changed_schedule=accept_changed_schedule,
        ),
        FTSCheckpoint(dirpath=dirpath, monitor="val_loss", save_top_k=-1, save_last=True, filename="{epoch}"),
        recorder,
    ]
    if not epochs_only:
        callbacks.insert(1, FTSEarlyStopping(monitor="val_loss", patience=2, min_delta=1e-3))
    settings = fit_kwargs(root, max_epochs=max_epochs, enable_checkpointing=True, strategy=strategy)
    trainer = pl.Trainer(**settings, callbacks=callbacks)
    # A fast learner: once the target flips (diverge_on_epoch), validation gets worse, so the best checkpoint stays
    # in phase 0; with a late flip, the best checkpoint moves into later phases.
    model = BoringFTSModel(diverge_on_epoch=diverge_on_epoch, lr=0.05)
    trainer.fit(model, ckpt_path=ckpt_path)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return recorder, weights, trainer


def _assert_same_continuation(twin: Recorder, resumed: Recorder, from_epoch: int) -> None:
    expected = {e: s for e, s in twin.epochs.items() if e >= from_epoch}
    assert resumed.epochs == expected


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recorder, dict[str, torch.Tensor], Path, Any]:
    root = tmp_path_factory.mktemp("twin")
    recorder, weights, trainer = _fit(root, root / "ckpts", schedule=SCHEDULE, max_epochs=12)
    return recorder, weights, root / "ckpts", trainer


def test_uninterrupted_fit_goes_through_every_phase(uninterrupted: Any) -> None:
    recorder, _, _, _ = uninterrupted
    depths = [state["depth"] for state in recorder.epochs.values()]
    assert depths == sorted(depths) and depths[-1] == 2 and depths[0] == 0


@pytest.mark.parametrize("epoch", [1, 3, 4, 5, 6, 7])
def test_resume_from_every_kind_of_epoch_checkpoint(uninterrupted: Any, tmp_path: Path, epoch: int) -> None:
    twin, twin_weights, ckpts, _ = uninterrupted
    if epoch + 1 not in twin.epochs:
        pytest.skip(f"the uninterrupted fit stopped before epoch {epoch + 1}")
    resumed, weights, _ = _fit(
        tmp_path, ckpts, schedule=SCHEDULE, max_epochs=12, ckpt_path=str(ckpts / f"epoch={epoch}.ckpt")
    )
    _assert_same_continuation(twin, resumed, epoch + 1)
    _assert_same_weights(twin_weights, weights)


def test_interrupted_fit_resumed_from_last_and_best_into_another_dirpath(uninterrupted: Any, tmp_path: Path) -> None:
    twin, twin_weights, _, _ = uninterrupted
    _, _, interrupted = _fit(tmp_path / "a", tmp_path / "a_ckpts", schedule=SCHEDULE, max_epochs=7)
    best = next(cb for cb in interrupted.callbacks if isinstance(cb, FTSCheckpoint)).best_model_path
    for path in (best, str(tmp_path / "a_ckpts" / "last.ckpt")):
        saved_epoch = torch.load(path, weights_only=True)["epoch"]
        with pytest.warns(UserWarning, match="dirpath changed"):
            resumed, weights, _ = _fit(
                tmp_path / Path(path).stem,
                tmp_path / "elsewhere" / Path(path).stem,
                schedule=SCHEDULE,
                max_epochs=12,
                ckpt_path=path,
            )
        _assert_same_continuation(twin, resumed, saved_epoch + 1)
        _assert_same_weights(twin_weights, weights)


def test_resume_after_the_schedule_finished_with_larger_max_epochs(tmp_path: Path) -> None:
    _, _, _ = _fit(tmp_path / "a", tmp_path / "a_ckpts", schedule=EPOCH_SCHEDULE, max_epochs=6, epochs_only=True)
    twin, twin_weights, _ = _fit(
        tmp_path / "b", tmp_path / "b_ckpts", schedule=EPOCH_SCHEDULE, max_epochs=9, epochs_only=True
    )
    resumed, weights, _ = _fit(
        tmp_path / "a",
        tmp_path / "a_ckpts",
        schedule=EPOCH_SCHEDULE,
        max_epochs=9,
        epochs_only=True,
        ckpt_path=str(tmp_path / "a_ckpts" / "last.ckpt"),
    )
    assert min(resumed.epochs) == 6
    _assert_same_continuation(twin, resumed, 6)
    _assert_same_weights(twin_weights, weights)


def test_resume_with_an_incompatible_schedule_is_a_clear_error(uninterrupted: Any, tmp_path: Path) -> None:
    _, _, ckpts, _ = uninterrupted
    two_phases = {0: SCHEDULE[0], 1: {"params": ["model.[0-2].*"]}}
    changed = r"schedule differs from the one the checkpoint was trained with: the schedule had 3 phases, it has 2"
    with pytest.raises(CheckpointMismatchError, match=changed) as raised:
        _fit(tmp_path, tmp_path / "c", schedule=two_phases, max_epochs=12, ckpt_path=str(ckpts / "last.ckpt"))
    assert isinstance(raised.value, MisconfigurationException)  # what Lightning users catch
    # Accepting a changed schedule does not accept one without the checkpoint's phase.
    expected = "checkpoint was saved in phase 2, but the schedule has only 2 phases"
    with pytest.raises(CheckpointMismatchError, match=expected):
        _fit(
            tmp_path / "accepted",
            tmp_path / "d",
            schedule=two_phases,
            max_epochs=12,
            ckpt_path=str(ckpts / "last.ckpt"),
            accept_changed_schedule=True,
        )


class LateRestoringStrategy(SingleDeviceStrategy):
    """Restores checkpoints after its setup, as FSDP and ModelParallelStrategy do (callbacks load after fit start)."""

    @property
    def restore_checkpoint_after_setup(self) -> bool:
        return True


def test_resume_with_a_strategy_that_restores_after_setup(tmp_path: Path) -> None:
    def fit(root: Path, max_epochs: int, ckpt_path: str | None = None) -> tuple[Recorder, dict[str, torch.Tensor]]:
        strategy = LateRestoringStrategy(device=torch.device("cpu"))
        recorder, weights, _ = _fit(
            root, root / "ck", schedule=SCHEDULE, max_epochs=max_epochs, ckpt_path=ckpt_path, strategy=strategy
        )
        return recorder, weights

    twin, twin_weights = fit(tmp_path / "twin", 12)
    fit(tmp_path / "first", 7)
    resumed, weights = fit(tmp_path / "first", 12, ckpt_path=str(tmp_path / "first" / "ck" / "last.ckpt"))
    assert resumed.epochs[7]["depth"] >= 1
    _assert_same_continuation(twin, resumed, 7)
    _assert_same_weights(twin_weights, weights)


def test_resume_when_the_best_checkpoint_is_in_a_later_phase(tmp_path: Path) -> None:
    # Validation keeps improving, so each new best checkpoint is in the current phase, and entering phase 2 reloads a
    # phase-1 checkpoint: restore_best with groups that must survive the reload.
    def fit(root: Path, max_epochs: int, ckpt_path: str | None = None) -> tuple[Recorder, dict[str, torch.Tensor]]:
        recorder, weights, _ = _fit(
            root, root / "ck", schedule=EPOCH_SCHEDULE, max_epochs=max_epochs, ckpt_path=ckpt_path, diverge_on_epoch=100
        )
        return recorder, weights

    twin, twin_weights = fit(tmp_path / "twin", 7)
    assert [twin.epochs[e]["depth"] for e in range(7)] == [0, 0, 1, 1, 2, 2, 2]
    best_depth = _saved_fit_state(tmp_path / "twin" / "ck" / "epoch=3.ckpt").get("best_ckpt_depth", 0)
    assert best_depth == 1, "the scenario must put the best checkpoint in a later phase"
    for epoch in (2, 3, 4):
        resumed, weights = fit(tmp_path / "twin", 7, ckpt_path=str(tmp_path / "twin" / "ck" / f"epoch={epoch}.ckpt"))
        _assert_same_continuation(twin, resumed, epoch + 1)
        _assert_same_weights(twin_weights, weights)


def _saved_fit_state(path: Path) -> dict[str, Any]:
    callbacks = torch.load(path, weights_only=True)["callbacks"]
    return next(value["fit_state"] for key, value in callbacks.items() if key.startswith("FinetuningScheduler"))
