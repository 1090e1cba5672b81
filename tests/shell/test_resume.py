"""Exact resume: a fit resumed from any checkpoint continues exactly as the uninterrupted fit did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, Recorder, fit_kwargs

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

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
) -> tuple[Recorder, dict[str, torch.Tensor], Any]:
    pl.seed_everything(7)
    recorder = Recorder()
    callbacks: list[pl.Callback] = [
        FinetuningScheduler(ft_schedule=schedule, restore_best=restore_best, epoch_transitions_only=epochs_only),
        FTSCheckpoint(dirpath=dirpath, monitor="val_loss", save_top_k=-1, save_last=True, filename="{epoch}"),
        recorder,
    ]
    if not epochs_only:
        callbacks.insert(1, FTSEarlyStopping(monitor="val_loss", patience=2, min_delta=1e-3))
    trainer = pl.Trainer(**fit_kwargs(root, max_epochs=max_epochs, enable_checkpointing=True), callbacks=callbacks)
    # A fast learner: after the target flips, validation gets worse, so the best checkpoint stays in phase 0.
    model = BoringFTSModel(diverge_on_epoch=3, lr=0.05)
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
    with pytest.raises(Exception, match="checkpoint was saved in phase 2, but the schedule has only 2 phases"):
        _fit(tmp_path, tmp_path / "c", schedule=two_phases, max_epochs=12, ckpt_path=str(ckpts / "last.ckpt"))
