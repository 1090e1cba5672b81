"""``plot``: a run's trace as a picture (the demo's output folder, a trace file, and the errors a user can hit)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetuning_scheduler.shell.app.cli import main
from finetuning_scheduler.shell.app.plot import phase_spans, read_trace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _trace(tmp_path: Path) -> Path:
    epochs = [
        {
            "epoch": 0,
            "depth": 0,
            "reason": None,
            "trainable_share": 0.1,
            "lrs": [0.1],
            "monitor": "val_loss",
            "value": 1.0,
        },
        {
            "epoch": 1,
            "depth": 1,
            "reason": "early stopping: the phase converged",
            "trainable_share": 0.5,
            "lrs": [0.1, 1e-3],
            "monitor": "val_loss",
            "value": 0.6,
        },
        {
            "epoch": 2,
            "depth": 1,
            "reason": None,
            "trainable_share": 0.5,
            "lrs": [0.07, 7e-4],
            "monitor": "val_loss",
            "value": None,
        },
    ]
    folder = tmp_path / "run" / "version_0"
    folder.mkdir(parents=True)
    path = folder / "Model_ft_trace.json"
    path.write_text(json.dumps({"format": 1, "epochs": epochs}))
    return path


def test_a_run_folder_gives_a_png_beside_its_trace(tmp_path: Path) -> None:
    trace = _trace(tmp_path)
    assert main(["plot", str(tmp_path / "run")]) == 0  # the trace is found below the folder
    assert trace.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
    assert main(["plot", str(trace), "-o", str(tmp_path / "out" / "p.png")]) == 0
    assert (tmp_path / "out" / "p.png").read_bytes()[:8] == PNG_MAGIC


def test_phase_spans_say_how_each_phase_ended(tmp_path: Path) -> None:
    spans = phase_spans(read_trace(_trace(tmp_path)))
    assert spans == [(0, 0, 0, "early stopping: the phase converged"), (1, 1, 2, "end of training")]


@pytest.mark.parametrize("kind", ["missing", "empty-folder", "not-json", "no-epochs"])
def test_what_cannot_be_plotted_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    target = tmp_path / "x.json"
    if kind == "empty-folder":
        target = tmp_path
    elif kind == "not-json":
        target.write_text("{")
    elif kind == "no-epochs":
        target.write_text('{"epochs": []}')
    assert main(["plot", str(target)]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.slow
def test_the_demos_output_folder_plots(tmp_path: Path) -> None:
    from finetuning_scheduler.shell.app import demo

    assert demo.main(["--output-dir", str(tmp_path), "--max-epochs", "8", "--plain"]) == 0
    assert main(["plot", str(tmp_path), "-o", str(tmp_path / "phases.png")]) == 0
    assert (tmp_path / "phases.png").stat().st_size > 20_000
