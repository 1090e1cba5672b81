"""FSDP2 through the ModelParallelStrategyAdapter's ``fsdp_plan`` (the module has no ``configure_model``), with a
GPT-2-style tied embedding and head: two CPU processes (gloo) against one, and a resume against its twin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("tied_fsdp2_fit.py")
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _fit(out: Path, name: str, devices: int, resume_from: Path | None = None) -> dict[str, object]:
    command = [sys.executable, str(SCRIPT), str(out), name, str(devices), *([str(resume_from)] if resume_from else [])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=out)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads((out / f"{name}.json").read_text()))


def _max_difference(out: Path, a: str, b: str) -> float:
    x, y = (torch.load(out / f"{name}.pt", weights_only=True) for name in (a, b))
    assert x.keys() == y.keys()
    return max(float((x[key] - y[key]).abs().max()) for key in x)


def test_planned_sharding_of_a_tied_model_trains_resumes_and_matches_one_process(tmp_path: Path) -> None:
    two = _fit(tmp_path, "two", 2)
    assert two["sharded"] == "DTensor" and two["tied"] is True  # the plan sharded it; the tie survived
    assert two["history"] == [[2, 1, True], [4, 2, True]]  # transitions after restoring the best checkpoint
    # Phase 0 named the head by its tied name (lm_head.weight): the shared tensor was thawed, not dropped as in FTS.
    assert two["groups"] == [3, 2, 2] and "model.wte.weight" in two["trainable"]  # type: ignore[operator]
    one = _fit(tmp_path, "one", 1)
    assert one["history"] == two["history"] and one["groups"] == two["groups"]
    # The same global batch on one process: the same fit, up to float rounding.
    assert _max_difference(tmp_path, "two_rank0", "one_rank0") < 1e-5
    resumed = _fit(tmp_path, "resumed", 2, tmp_path / "two_ck" / "epoch=2.ckpt")
    assert resumed["history"] == [[4, 2, True]] and resumed["groups"] == two["groups"]
    for rank in (0, 1):  # AdamW state of the rebuilt phases loads too: the resumed fit equals the uninterrupted one
        assert _max_difference(tmp_path, f"two_rank{rank}", f"resumed_rank{rank}") == 0.0
