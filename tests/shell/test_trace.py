"""The run's trace file (``{Module}_ft_trace.json`` beside the schedule): one entry per epoch, kept across a resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from fts_support import BoringFTSModel, fit_kwargs

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

SCHEDULE = {
    0: {"params": ["model.3.*"], "max_transition_epoch": 1},
    1: {"params": ["model.2.*"], "lr": 1e-2, "max_transition_epoch": 3},
    2: {"params": ["model.[01].*"]},
}


def _fit(tmp_path: Path, max_epochs: int, ckpt_path: str | None = None) -> None:
    callbacks = [
        FinetuningScheduler(ft_schedule=SCHEDULE),
        FTSEarlyStopping(monitor="val_loss", patience=3),
        FTSCheckpoint(monitor="val_loss", dirpath=tmp_path / "ck", save_top_k=-1, filename="{epoch}"),
    ]
    trainer = pl.Trainer(callbacks=callbacks, **fit_kwargs(tmp_path, max_epochs=max_epochs))
    trainer.fit(BoringFTSModel(diverge_on_epoch=10, lr=0.05), ckpt_path=ckpt_path)


def _trace(tmp_path: Path) -> list[dict[str, Any]]:
    document = json.loads((tmp_path / "BoringFTSModel_ft_trace.json").read_text())
    assert document["format"] == 1
    return list(document["epochs"])


def test_trace_has_one_entry_per_epoch_with_phase_share_lrs_and_metric(tmp_path: Path) -> None:
    _fit(tmp_path, max_epochs=5)
    entries = _trace(tmp_path)
    assert [e["epoch"] for e in entries] == [0, 1, 2, 3, 4]
    assert [e["depth"] for e in entries] == [0, 1, 1, 2, 2]
    assert [e["reason"] for e in entries] == [None, "max_transition_epoch reached", None, entries[3]["reason"], None]
    assert entries[3]["reason"] == "max_transition_epoch reached"
    assert [e["trainable_tensors"] for e in entries] == [2, 4, 4, 8, 8]
    shares = [e["trainable_share"] for e in entries]
    assert shares[0] == 66 / (3 * 1056 + 66) and shares[-1] == 1.0  # the head's 66 elements of 3,234
    assert [len(e["lrs"]) for e in entries] == [1, 2, 2, 3, 3] and entries[1]["lrs"][1] == 1e-2
    assert all(e["monitor"] == "val_loss" and isinstance(e["value"], float) for e in entries)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_resumed_fit_continues_the_trace_of_the_fit_it_resumes(tmp_path: Path) -> None:
    _fit(tmp_path, max_epochs=5)
    uninterrupted = _trace(tmp_path)
    _fit(tmp_path, max_epochs=5, ckpt_path=str(tmp_path / "ck" / "epoch=2.ckpt"))
    resumed = _trace(tmp_path)
    assert [e["epoch"] for e in resumed] == [0, 1, 2, 3, 4]
    assert resumed[:3] == uninterrupted[:3]  # the earlier epochs are kept as they were
    assert [e["depth"] for e in resumed] == [e["depth"] for e in uninterrupted]
    assert resumed[3]["reason"] == "max_transition_epoch reached"
