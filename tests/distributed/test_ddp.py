"""DDP on CPU with the gloo backend, two processes: they transition together (even when only one sees its phase
converge), keep identical weights without ``find_unused_parameters``, write the run's files once, and a fit resumed
from a checkpoint equals the uninterrupted one, also when the monitored metric is not synchronised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from fts_support import process_failure

SCRIPT = Path(__file__).with_name("ddp_fit.py")
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _fit(out: Path, name: str, *options: str, processes: int = 2) -> tuple[list[dict[str, Any]], str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), name, *options], capture_output=True, text=True, timeout=300, cwd=out
    )
    assert done.returncode == 0, process_failure(done.stderr)
    return [json.loads((out / f"{name}_rank{rank}.json").read_text()) for rank in range(processes)], done.stderr


def _weights(out: Path, name: str, rank: int) -> dict[str, torch.Tensor]:
    return dict(torch.load(out / f"{name}_rank{rank}.pt", weights_only=True))


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    differing = {key: float((a[key] - b[key]).abs().max()) for key in a if not torch.equal(a[key], b[key])}
    assert not differing, f"{what} differ in {differing}"


def test_unsynchronised_metric_transitions_together_and_resumes_exactly(tmp_path: Path) -> None:
    reports, stderr = _fit(tmp_path, "full")
    # The metric is logged per process (no sync_dist): said once.
    assert stderr.count("whose value differs between processes: log it with `sync_dist=True`") == 1
    assert reports[0] == reports[1]  # both processes: the same depths, transitions and optimizer groups
    assert reports[0]["world"] == 2 and reports[0]["history"] == [[2, 1, "EPOCH"], [4, 2, "EPOCH"]]
    assert reports[0]["groups"] == [2, 2, 4]
    # strategy="ddp" (find_unused_parameters=False) with frozen layers in the forward pass: no error, no drift.
    _assert_same_weights(_weights(tmp_path, "full", 0), _weights(tmp_path, "full", 1), "the processes' weights")
    # Each process resumes from its own early-stopping and top-k state (kept per process in the checkpoint).
    resumed, _ = _fit(tmp_path, "resumed", "--resume", "epoch=3.ckpt")
    assert resumed[0]["history"] == [[4, 2, "EPOCH"]] and resumed[0]["depths"] == {"4": 2, "5": 2, "6": 2}
    for rank in (0, 1):
        _assert_same_weights(
            _weights(tmp_path, "full", rank), _weights(tmp_path, "resumed", rank), f"rank {rank}'s resumed weights"
        )
    # Rank zero alone wrote the run's files, atomically (no temporary file left), and the trace spans the resume.
    assert (tmp_path / "DDPModel_ft_schedule.yaml").is_file()
    assert not list(tmp_path.glob(".*.tmp"))
    trace = json.loads((tmp_path / "DDPModel_ft_trace.json").read_text())
    assert [entry["epoch"] for entry in trace["epochs"]] == list(range(7))
    assert [entry["depth"] for entry in trace["epochs"]] == [0, 0, 1, 1, 2, 2, 2]


def test_one_process_seeing_convergence_ends_the_phase_for_all(tmp_path: Path) -> None:
    # Only rank 1's validation loss stops improving; phase 0 would otherwise run to its max_transition_epoch (4).
    reports, _ = _fit(tmp_path, "lonely", "--lonely-rank", "1", "--strategy", "ddp_find_unused_parameters_false")
    assert reports[0] == reports[1]
    assert reports[0]["history"][0] == [3, 1, "EARLY_STOPPING"]
    _assert_same_weights(_weights(tmp_path, "lonely", 0), _weights(tmp_path, "lonely", 1), "the processes' weights")


def test_ddp_spawn_runs_the_schedule_in_its_workers_as_one_process_would(tmp_path: Path) -> None:
    reports, stderr = _fit(tmp_path, "spawn", "--strategy", "ddp_spawn", "--sync")
    assert "differs between processes" not in stderr  # val_loss is synchronised here
    assert reports[0] == reports[1] and reports[0]["final_depth"] == 2 and reports[0]["groups"] == [2, 2, 4]
    _assert_same_weights(_weights(tmp_path, "spawn", 0), _weights(tmp_path, "spawn", 1), "the processes' weights")
    # One process with the same global batch (2) takes the same phase decisions and ends with the same weights,
    # up to float rounding.
    (single,), _ = _fit(tmp_path, "single", "--sync", "--devices", "1", processes=1)
    assert single["world"] == 1 and single["history"] == reports[0]["history"]
    a, b = _weights(tmp_path, "spawn", 0), _weights(tmp_path, "single", 0)
    assert max(float((a[key] - b[key]).abs().max()) for key in a) < 1e-5
    # The launching process's callback never sees the workers' state; the trace file tells what they did.
    trace = json.loads((tmp_path / "DDPModel_ft_trace.json").read_text())
    assert [entry["reason"] for entry in trace["epochs"]][2] == "max_transition_epoch reached"
