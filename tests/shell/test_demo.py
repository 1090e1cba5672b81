"""The demo (``python -m finetuning_scheduler demo``) fine-tunes on real data and leaves its outputs behind."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import yaml

from finetuning_scheduler.__main__ import main as cli_main
from finetuning_scheduler.shell.app import demo

pytestmark = pytest.mark.slow  # the whole demo


def test_demo_fine_tunes_the_digits_in_phases(tmp_path: Path) -> None:
    status = demo.main(["--output-dir", str(tmp_path), "--max-epochs", "16", "--plain"])

    assert status == 0
    for name in ("schedule.yaml", "trace.csv", "trace.json"):
        assert (tmp_path / name).is_file(), name
    assert yaml.safe_load((tmp_path / "schedule.yaml").read_text()) == demo.SCHEDULE
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert [row["epoch"] for row in trace["epochs"]] == list(range(len(trace["epochs"])))
    phases = trace["phases"]
    assert [p["phase"] for p in phases] == list(range(len(phases)))
    assert len(phases) >= 2, "the schedule should have moved past the head-only phase"
    # each later phase thaws more of the model and adds one param group with its own lr
    assert [len(p["lrs"]) for p in phases] == [p["phase"] + 1 for p in phases]
    assert all(a["trainable_share"] < b["trainable_share"] for a, b in itertools.pairwise(phases))
    assert phases[0]["ended_by"].startswith(("max_transition_epoch", "early stopping"))
    # a pretrained MLP fine-tuned on the ten digits: well above the 10% of chance
    assert trace["final_val_accuracy"] > 0.9


def test_cli_offers_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["demo", "--help"])

    assert exit_info.value.code == 0
    assert "--output-dir" in capsys.readouterr().out
