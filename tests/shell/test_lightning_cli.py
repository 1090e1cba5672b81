"""LightningCLI: the scheduler and its callbacks configured in YAML or added on the command line, as users of
``examples/lightning_cli`` run it; and the same config read by ``validate``, ``plan`` and ``gen``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("jsonargparse")

from driver_support import load_example

from finetuning_scheduler import FinetuningScheduler
from finetuning_scheduler.shell.app.cli import main as fts_main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lightning_cli"
pytestmark = pytest.mark.slow  # real fits


@pytest.fixture
def cli_main(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.chdir(ROOT)  # the config names the schedule relative to the repository root
    return load_example("lightning_cli/cli").main


def _scheduler(cli: object) -> FinetuningScheduler:
    return next(cb for cb in cli.trainer.callbacks if isinstance(cb, FinetuningScheduler))  # type: ignore[attr-defined]


def test_the_example_config_fine_tunes_in_phases(cli_main: object, tmp_path: Path) -> None:
    args = [
        "fit",
        "--config",
        str(EXAMPLE / "config.yaml"),
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
    ]
    cli = cli_main(args)  # type: ignore[operator]
    fts = _scheduler(cli)
    assert [(c.epoch, c.depth) for c in fts.transition_history] == [(2, 1), (4, 2)]
    assert fts.restore_best is True and fts.curr_depth == 2
    trace = json.loads((tmp_path / "Classifier_ft_trace.json").read_text())
    assert [e["depth"] for e in trace["epochs"]] == [0, 0, 1, 1, 2, 2]


def test_the_scheduler_can_be_added_on_the_command_line(cli_main: object, tmp_path: Path) -> None:
    args = [
        "fit",
        "--trainer.max_epochs=6",
        "--trainer.accelerator=cpu",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.callbacks+=FinetuningScheduler",
        f"--trainer.callbacks.ft_schedule={EXAMPLE / 'schedule.yaml'}",
    ]
    fts = _scheduler(cli_main(args))  # type: ignore[operator]
    assert [(c.epoch, c.depth) for c in fts.transition_history] == [(2, 1), (4, 2)]


def test_validate_plan_and_gen_read_the_same_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(ROOT)
    config = ["--config", str(EXAMPLE / "config.yaml"), "--model", "examples.lightning_cli.cli:Classifier"]
    assert fts_main(["validate", str(EXAMPLE / "schedule.yaml"), *config]) == 0
    assert "valid: 3 phase(s) thawing 8 of 8 parameter tensors" in capsys.readouterr().out
    assert fts_main(["plan", str(EXAMPLE / "schedule.yaml"), *config, "--plain"]) == 0
    assert "epoch 2 at the latest" in capsys.readouterr().out
    assert fts_main(["gen", *config, "--policy", "blocks", "-o", str(tmp_path / "gen.yaml")]) == 0
    assert fts_main(["validate", str(tmp_path / "gen.yaml"), *config]) == 0
