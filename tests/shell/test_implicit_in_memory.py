"""The implicit path uses the schedule it generated in memory: it writes the file for the user, and never parses
it back (the round trip was most of the setup time on large models)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import yaml
from fts_support import BoringFTSModel, fit_kwargs

from finetuning_scheduler import FinetuningScheduler
from finetuning_scheduler.shell.lightning import _schedule_setup


def test_the_generated_schedule_is_used_in_memory_and_written_for_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_reading(path: object) -> None:
        raise AssertionError(f"the generated schedule was read back from {path}")

    monkeypatch.setattr(_schedule_setup, "read_schedule", no_reading)
    fts = FinetuningScheduler(max_depth=1)
    pl.Trainer(callbacks=[fts], **fit_kwargs(tmp_path, max_epochs=2)).fit(BoringFTSModel())
    written = yaml.safe_load((tmp_path / "BoringFTSModel_ft_schedule.yaml").read_text())
    assert written[0] == {"params": ["model.3.bias", "model.3.weight"]}  # FTS's policy: the last registered first
    assert [phase["params"] for phase in fts.ft_schedule.values()][:2] == [written[0]["params"], written[1]["params"]]
