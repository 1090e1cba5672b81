"""The bad-input corpus: each file of ``tests/corpus/schedules`` is a broken schedule for the 4-layer fixture, with
its expected first error code and position in ``tests/corpus/expected.txt``. Each must give that error, located,
from ``Trainer.fit`` before any training step (a ``ScheduleValidationError``, never a traceback from inside the
library) and from ``python -m finetuning_scheduler validate``; nothing may be left behind in the log folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import yaml
from fts_support import BoringFTSModel, fit_kwargs

from finetuning_scheduler import FinetuningScheduler, ScheduleValidationError
from finetuning_scheduler.shell.app.cli import main as cli_main

CORPUS = Path(__file__).parent / "corpus"


def corpus() -> list[list[str]]:
    lines = (CORPUS / "expected.txt").read_text().splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


def expected() -> list[tuple[str, str, str]]:
    return [(name, code, where) for name, code, where, *_ in corpus()]


def checkable_offline() -> list[tuple[str, str, str]]:
    return [(name, code, where) for name, code, where, *flags in corpus() if "fit-only" not in flags]


def test_the_corpus_is_complete_and_large_enough() -> None:
    files = {path.stem for path in (CORPUS / "schedules").glob("*.yaml")}
    assert files == {name for name, _, _ in expected()}
    assert len(files) >= 80


def _where(diagnostic: Any) -> str:
    return "-" if diagnostic.position is None else f"{diagnostic.position.line}:{diagnostic.position.column}"


class NoStep(pl.Callback):
    def on_train_batch_start(self, *args: Any) -> None:
        raise AssertionError("a training step ran with a broken schedule")


@pytest.mark.parametrize(("name", "code", "where"), expected(), ids=[row[0] for row in expected()])
def test_a_broken_schedule_fails_the_fit_before_any_step(tmp_path: Path, name: str, code: str, where: str) -> None:
    path = CORPUS / "schedules" / f"{name}.yaml"
    fts = FinetuningScheduler(ft_schedule=path)
    trainer = pl.Trainer(callbacks=[fts, NoStep()], **fit_kwargs(tmp_path / "run", max_epochs=2))
    with pytest.raises(ScheduleValidationError) as raised:
        trainer.fit(BoringFTSModel())
    first = next(d for d in raised.value.diagnostics if d.is_error)
    assert (first.code, _where(first)) == (code, where), first.render()
    assert first.source == str(path) or first.position is None
    # Nothing partial is left: at most the complete copy of a schedule that validated (a problem only the fit's
    # optimizer shows comes after it is saved), never a temporary file.
    left = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert all(p.suffix == ".yaml" and yaml.safe_load(p.read_text()) for p in left), left


def test_validate_reports_every_corpus_file_with_the_same_first_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, code, where in checkable_offline():
        path = CORPUS / "schedules" / f"{name}.yaml"
        status = cli_main(["validate", str(path), "--model", "fts_support:BoringFTSModel", "--format", "json"])
        out = capsys.readouterr()
        if code == "schedule-file":  # the file cannot be read at all: a usage error (exit 2), said in one line
            assert status == 2 and "schedule file" in out.err and "Traceback" not in out.err, name
            continue
        assert status == 1, (name, out.err)
        report = json.loads(out.out)
        report = report[0] if isinstance(report, list) else report
        first = next(d for d in report["diagnostics"] if d["severity"] == "error")
        got = "-" if first["line"] is None else f"{first['line']}:{first['column']}"
        assert (first["code"], got) == (code, where), name
