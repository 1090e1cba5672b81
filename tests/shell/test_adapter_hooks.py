"""The adapter's checkpoint hooks run whenever a checkpoint is saved or loaded: at saves, restore_best, resume."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, Recorder, fit_kwargs
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping, StrategyAdapter

SCHEDULE = {0: {"params": ["model.3.*"]}, 1: {"params": ["model.2.*"]}, 2: {"params": ["model.[01].*"]}}
CALLS: list[str] = []


class RenamingAdapter(StrategyAdapter):
    """Stores checkpoints under other keys ("renamed." + key) and reads them back: only works if every save and
    every load goes through the adapter."""

    def lightning_module_state_dict(self) -> dict[str, Any]:
        CALLS.append("save")
        return {f"renamed.{key}": value for key, value in super().lightning_module_state_dict().items()}

    def load_model_state_dict(self, checkpoint: Mapping[str, Any], strict: bool = True) -> None:
        CALLS.append("load")
        restored = {key.removeprefix("renamed."): value for key, value in checkpoint["state_dict"].items()}
        super().load_model_state_dict({**checkpoint, "state_dict": restored}, strict=strict)


def _fit(root: Path, max_epochs: int, ckpt_path: str | None = None) -> tuple[Recorder, pl.LightningModule]:
    pl.seed_everything(5)
    recorder = Recorder()
    adapter = f"{RenamingAdapter.__module__}:RenamingAdapter"
    callbacks = [
        FinetuningScheduler(ft_schedule=SCHEDULE, custom_strategy_adapters={"single_device": adapter}),
        FTSEarlyStopping(monitor="val_loss", patience=1),
        FTSCheckpoint(monitor="val_loss", dirpath=root / "ck", save_last=True),
        recorder,
    ]
    model = BoringFTSModel(diverge_on_epoch=2, lr=0.05)
    trainer = pl.Trainer(callbacks=callbacks, **fit_kwargs(root, max_epochs=max_epochs, enable_checkpointing=True))
    trainer.fit(model, ckpt_path=ckpt_path)
    return recorder, model


def test_saves_restore_best_and_resume_all_use_the_adapter(tmp_path: Path) -> None:
    CALLS.clear()
    twin, twin_model = _fit(tmp_path / "twin", 8)
    assert "save" in CALLS and "load" in CALLS  # saves, and restore_best at each transition
    saved = torch.load(tmp_path / "twin" / "ck" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(key.startswith("renamed.") for key in saved)

    _fit(tmp_path / "first", 4)
    last = tmp_path / "first" / "ck" / "last.ckpt"
    saved_epoch = torch.load(last, weights_only=True)["epoch"]
    CALLS.clear()
    resumed, model = _fit(tmp_path / "first", 8, ckpt_path=str(last))
    assert CALLS[0] == "load"  # Lightning's own model restore on resume went through the adapter
    assert min(resumed.epochs) == saved_epoch + 1
    assert resumed.epochs == {e: s for e, s in twin.epochs.items() if e > saved_epoch}
    weights, twin_weights = model.state_dict(), twin_model.state_dict()
    assert weights.keys() == twin_weights.keys()
    assert all(torch.equal(weights[key], twin_weights[key]) for key in weights)


class WrongTranslationAdapter(StrategyAdapter):
    def fts_optim_transform(self, orig_pl: list[str], inspect_only: bool = False) -> list[str]:
        return [f"typo.{name}" for name in orig_pl]


def test_an_adapter_translating_to_unknown_names_is_one_clear_error_at_setup(tmp_path: Path) -> None:
    adapter = f"{WrongTranslationAdapter.__module__}:WrongTranslationAdapter"
    fts = FinetuningScheduler(ft_schedule=SCHEDULE, custom_strategy_adapters={"single_device": adapter})
    trainer = pl.Trainer(callbacks=[fts], **fit_kwargs(tmp_path, max_epochs=1))
    with pytest.raises(
        MisconfigurationException, match=r"WrongTranslationAdapter translated .*phase 0: \['typo\.model\.3"
    ):
        trainer.fit(BoringFTSModel())
