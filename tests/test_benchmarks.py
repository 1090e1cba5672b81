"""The benchmark runner runs end to end on a tiny configuration (this project's side only) and reports every
section: a broken benchmark is found here, not when someone needs its figures. No timing is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_runner_measures_every_section_on_a_tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.__main__ import main
    from benchmarks.perf._layout import moe_names

    args = ["--sides", "ours", "--sizes", "300", "--transition-sizes", "300", "--runs", "1", "--steps", "80"]
    args += ["--keys", "2000", "--only", "setup,transition,steps,translation,memory", "--out", str(tmp_path)]
    assert main(args) == 0
    report = json.loads((tmp_path / "perf-latest.json").read_text())
    setup = {row["schedule"]: row for row in report["setup"]}
    assert set(setup) == {"implicit", "regex"}
    assert all(
        "error" not in row and row["params"] == len(moe_names(300)) and len(row["scheduler"]) == 1
        for row in setup.values()
    )
    transition = report["transition"][0]
    assert "error" not in transition and transition["thawed"] > 2, "phase 1 thawed more than phase 0's head"
    assert len(report["steps"][0]["plain"]) == len(report["steps"][0]["scheduler"]) == 5
    assert report["translation"]["copied_bytes"] == 0 and report["translation"]["round_trip_keys_equal"]
    memory = {(row["side"], row["mode"]): row for row in report["memory"]}
    assert set(memory) == {("plain", "full"), ("plain", "frozen"), ("ours", "scheduler")}
    phase0 = memory[("ours", "scheduler")]
    assert phase0["frozen_tensors"] == 30 and phase0["frozen_with_grad"] == phase0["frozen_with_optimizer_state"] == 0
    assert memory[("plain", "full")]["frozen_tensors"] == 0
    assert sys.executable in report["sides"]["ours"]
