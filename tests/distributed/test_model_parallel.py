"""FSDP2 (fully_shard) through Lightning's ModelParallelStrategy on 2 CPU processes: phases over sharded (DTensor)
parameters, restore_best from distributed checkpoint folders, and a resume from one that equals the uninterrupted
fit weight for weight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fts_support import process_failure

SCRIPT = Path(__file__).with_name("model_parallel_fit.py")


def _run(tmp_path: Path, name: str, resume_from: str | None = None) -> dict[str, object]:
    out = tmp_path / f"{name}.json"
    command = [sys.executable, str(SCRIPT), str(out), str(tmp_path / "ck"), *([resume_from] if resume_from else [])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, process_failure(done.stderr)
    return dict(json.loads(out.read_text()))


@pytest.mark.slow
@pytest.mark.distributed
def test_sharded_phases_restore_the_best_checkpoint_and_resume(tmp_path: Path) -> None:
    full = _run(tmp_path, "full")
    assert full["depth"] == 2 and full["groups"] == [2, 2, 4]  # three phases over the sharded parameters
    assert full["restored_best"] == 2 and full["history"] == [[1, 1, True], [2, 2, True]]
    assert (tmp_path / "ck" / "epoch=1.ckpt").is_dir()  # distributed checkpoints are folders
    resumed = _run(tmp_path, "resumed", "epoch=1.ckpt")
    assert resumed["depth"] == 2 and resumed["groups"] == [2, 2, 4]
    assert resumed["history"] == [[2, 2, True]]  # this fit's own change: phase 2 at epoch 2, after a restore
    for rank in (0, 1):  # the gathered (unsharded) weights: the resumed fit equals the uninterrupted one
        a = torch.load(tmp_path / f"full_weights_rank{rank}.pt", weights_only=True)
        b = torch.load(tmp_path / f"resumed_weights_rank{rank}.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a), f"rank {rank}"
