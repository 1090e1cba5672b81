"""GPU checks (skipped without CUDA): Lightning's real FSDPStrategy (FSDP1) and ModelParallelStrategy (FSDP2) at
world size 1, and a GPT-2-sized model through three phases. ``tests/gpu/run.sh`` runs them on a one-GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

DISTRIBUTED = Path(__file__).resolve().parents[1] / "distributed"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _run(script: Path, *arguments: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("mode", ["--orig", "--flat"])
def test_fsdp1_on_one_gpu_wraps_validates_and_resumes(tmp_path: Path, mode: str) -> None:
    script = DISTRIBUTED / "fsdp1_fit.py"
    _run(script, str(tmp_path), "full", mode, "--gpu", cwd=tmp_path)
    full = json.loads((tmp_path / "full.json").read_text())
    assert full["units"] == ["model.0", "model.1", "model.2", "model.3"] and full["history"][-1][1] == 2
    _run(script, str(tmp_path), "resumed", mode, "--gpu", "--resume", "epoch=1.ckpt", cwd=tmp_path)
    a, b = (torch.load(tmp_path / f"{name}.pt", weights_only=True) for name in ("full", "resumed"))
    assert all(torch.equal(a[key], b[key]) for key in a)
    split = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "split"), "split", "--flat", "--split", "--gpu"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert split.returncode != 0 and "fsdp-flat-param-split" in split.stderr


def test_fsdp2_plan_with_tied_weights_on_one_gpu(tmp_path: Path) -> None:
    script = DISTRIBUTED / "tied_sharded_fit.py"
    env = {"FTS_TEST_ACCELERATOR": "cuda"}
    _run(script, str(tmp_path), "one", "1", cwd=tmp_path, env=env)
    result = json.loads((tmp_path / "one.json").read_text())
    assert result["tied"] and result["sharded"] == "DTensor" and result["history"] == [[2, 1, True], [4, 2, True]]
    _run(script, str(tmp_path), "resumed", "1", str(tmp_path / "one_ck" / "epoch=2.ckpt"), cwd=tmp_path, env=env)
    a, b = (torch.load(tmp_path / f"{name}_rank0.pt", weights_only=True) for name in ("one", "resumed"))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_gpt2_sized_phases_print_memory_and_step_time(tmp_path: Path) -> None:
    print(_run(Path(__file__).with_name("gpt2_phases.py"), str(tmp_path), cwd=tmp_path))
    results = json.loads((tmp_path / "gpt2_phases.json").read_text())
    scheduled, full = results["scheduled"], results["full_fine_tune"]
    assert [row["trainable_M"] for row in scheduled] == sorted(row["trainable_M"] for row in scheduled)
    assert scheduled[0]["peak_GiB"] < full[0]["peak_GiB"]  # phase 0 holds no gradients or Adam state for the body
