"""Checkpoint metadata: the depth of the best checkpoint, equal scores, epoch-only checkpoints."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, fit_kwargs

from finetuning_scheduler import CheckpointReadError, FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

SCHEDULE = {
    0: {"params": ["model.3.*"], "max_transition_epoch": 1},
    1: {"params": ["model.2.*"], "max_transition_epoch": 2},
    2: {"params": ["model.[01].*"], "max_transition_epoch": 3},
}


class ConstantLoss(BoringFTSModel):
    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val_loss", torch.tensor(1.0))


class ImprovingLoss(BoringFTSModel):
    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val_loss", torch.tensor(10.0 - self.current_epoch))


def _fit(tmp_path: Path, model: pl.LightningModule, **fts: Any) -> tuple[FinetuningScheduler, FTSCheckpoint]:
    scheduler = FinetuningScheduler(ft_schedule=SCHEDULE, **fts)
    checkpoint = FTSCheckpoint(monitor="val_loss", save_top_k=3, save_last=True, dirpath=tmp_path / "ck")
    callbacks: list[pl.Callback] = [scheduler, checkpoint]
    if not fts.get("epoch_transitions_only"):
        callbacks.append(FTSEarlyStopping(monitor="val_loss", patience=100))
    pl.Trainer(**fit_kwargs(tmp_path, max_epochs=5, enable_checkpointing=True), callbacks=callbacks).fit(model)
    return scheduler, checkpoint


def _saved_state(path: str) -> dict[str, Any]:
    callbacks = torch.load(path, weights_only=True)["callbacks"]
    return {key.split("{")[0]: value for key, value in callbacks.items()}


def test_equal_scores_keep_the_earlier_best_depth(tmp_path: Path) -> None:
    scheduler, checkpoint = _fit(tmp_path, ConstantLoss())
    assert scheduler.curr_depth == 2 and checkpoint.best_ckpt_depth == 0 and checkpoint.current_ckpt_depth == 2
    assert Path(checkpoint.best_model_path).name == "epoch=0-step=8.ckpt"
    saved = _saved_state(str(tmp_path / "ck" / "last.ckpt"))
    # last.ckpt is written with each top-k save (epoch 2 here); best_ckpt_depth 0 is the default, so omitted
    assert saved["FinetuningScheduler"]["fit_state"] == {"depth": 2, "decided_epoch": 2}
    assert (saved["FTSCheckpoint"]["current_ckpt_depth"], saved["FTSCheckpoint"]["best_ckpt_depth"]) == (2, 0)


def test_the_best_depth_follows_a_new_best_checkpoint(tmp_path: Path) -> None:
    scheduler, checkpoint = _fit(tmp_path, ImprovingLoss())
    assert checkpoint.best_ckpt_depth == scheduler.curr_depth == 2
    saved = _saved_state(checkpoint.best_model_path)
    assert saved["FinetuningScheduler"]["fit_state"] == {"depth": 2, "best_ckpt_depth": 2, "decided_epoch": 4}


def test_epoch_only_checkpoints_resume_without_early_stopping(tmp_path: Path) -> None:
    _fit(tmp_path, ImprovingLoss(), epoch_transitions_only=True)
    scheduler = FinetuningScheduler(ft_schedule=SCHEDULE, epoch_transitions_only=True)
    trainer = pl.Trainer(
        **fit_kwargs(tmp_path, max_epochs=6, enable_checkpointing=True),
        callbacks=[scheduler, FTSCheckpoint(monitor="val_loss", dirpath=tmp_path / "ck")],
    )
    trainer.fit(ImprovingLoss(), ckpt_path=str(tmp_path / "ck" / "last.ckpt"))
    assert scheduler.curr_depth == 2 and trainer.current_epoch == 6


def _saved(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("cut", ["half", "empty", "text", "a torch.save dict", "a tensor"])
def test_resuming_from_a_cut_off_checkpoint_is_one_clear_error_before_any_step(tmp_path: Path, cut: str) -> None:
    _fit(tmp_path, ImprovingLoss(), epoch_transitions_only=True)
    last = tmp_path / "ck" / "last.ckpt"
    whole = last.read_bytes()
    bad = {
        "half": whole[: len(whole) // 2],
        "empty": b"",
        "text": b"not a checkpoint\n",
        "a torch.save dict": _saved({"weights": torch.ones(2)}),
        "a tensor": _saved(torch.ones(2)),
    }
    last.write_bytes(bad[cut])
    steps: list[int] = []

    class CountSteps(pl.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            steps.append(1)

    fts = FinetuningScheduler(ft_schedule=SCHEDULE, epoch_transitions_only=True)
    callbacks = [fts, FTSCheckpoint(monitor="val_loss", dirpath=tmp_path / "ck"), CountSteps()]
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=5, enable_checkpointing=True), callbacks=callbacks)
    with pytest.raises(CheckpointReadError) as raised:
        trainer.fit(ImprovingLoss(), ckpt_path=str(last))
    message = str(raised.value)
    if cut.startswith("a "):  # a whole torch file, but not what a Trainer writes
        assert f"The file {last} is not a Lightning checkpoint: it holds a" in message
        assert "'pytorch-lightning_version'" in message and "Resume from a checkpoint a Trainer saved" in message
    else:
        assert f"Cannot read the checkpoint {last}" in message and "Resume from another checkpoint" in message
        assert ("it is empty" if cut == "empty" else "cut off mid-write") in message
    assert "newest first: epoch=4" in message  # the readable ones, to resume from instead
    assert not steps and "load_checkpoint" not in vars(trainer.strategy)  # the strategy's own loading is back


class Gadget:
    """An object a checkpoint should never bring back to life: loading it would run its class's code."""


def test_restore_best_loads_checkpoints_weights_only(tmp_path: Path) -> None:
    class SmuggleAnObject(pl.Callback):
        def on_save_checkpoint(
            self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]
        ) -> None:
            checkpoint["gadget"] = Gadget()

    scheduler = FinetuningScheduler(ft_schedule=SCHEDULE, epoch_transitions_only=True)
    checkpoint = FTSCheckpoint(monitor="val_loss", dirpath=tmp_path / "ck")
    trainer = pl.Trainer(**fit_kwargs(tmp_path, max_epochs=3), callbacks=[scheduler, checkpoint, SmuggleAnObject()])
    with pytest.raises(Exception, match="Weights only load failed") as raised:
        trainer.fit(ImprovingLoss())  # phase 1 begins at epoch 1 by restoring epoch 0's checkpoint
    assert "Gadget" in str(raised.value) and scheduler.curr_depth == 0
