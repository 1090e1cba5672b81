"""A killed run loses nothing: fits killed with SIGKILL mid-epoch or halfway through a checkpoint write, then resumed
from the last checkpoint, end with exactly the weights of the uninterrupted fit (CPU, deterministic).

Each fit runs in a process of its own (``tests/_support/crash_fit.py``): the kill is a real SIGKILL, with no
chance for Python to clean up. The kill points are in phase 1 and phase 2, right after transitions that restored
the best checkpoint, and in the write of the checkpoint before the phase-2 transition.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fts_support import process_failure

SCRIPT = Path(__file__).resolve().parents[1] / "_support" / "crash_fit.py"
pytestmark = pytest.mark.slow


def _run(root: Path, *options: str) -> subprocess.CompletedProcess[str]:
    # Lightning writes a checkpoint to a temporary file and renames it: the child's temporary files stay in root.
    (root / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONHASHSEED": "0", "TMPDIR": str(root / "tmp")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root), str(root / "weights.pt"), *options],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def _finished(root: Path, *options: str) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    done = _run(root, *options)
    assert done.returncode == 0, process_failure(done.stderr)
    depths = json.loads((root / "weights.json").read_text())
    return torch.load(root / "weights.pt", weights_only=True), depths


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    return _finished(tmp_path_factory.mktemp("uninterrupted"))


@pytest.mark.parametrize(
    "kill",
    [
        ["--kill-in-batch", "5:3"],  # the first epoch of phase 1 (epoch 4's checkpoint is the last)
        ["--kill-in-batch", "7:4"],  # the first epoch of phase 2
        ["--kill-in-write", "6"],  # halfway through writing epoch 6's checkpoint
    ],
    ids=["mid-epoch-phase-1", "mid-epoch-phase-2", "mid-checkpoint-write"],
)
def test_a_killed_fit_resumed_from_its_last_checkpoint_equals_the_uninterrupted_one(
    uninterrupted: tuple[dict[str, torch.Tensor], dict[str, int]], tmp_path: Path, kill: list[str]
) -> None:
    twin_weights, twin_depths = uninterrupted
    assert set(twin_depths.values()) == {0, 1, 2}, "the uninterrupted fit must go through every phase"
    killed = _run(tmp_path, *kill)
    assert killed.returncode == -signal.SIGKILL, process_failure(killed.stderr)
    assert not (tmp_path / "weights.pt").exists()
    checkpoints = sorted((tmp_path / "ckpt").glob("*.ckpt"))
    for path in checkpoints:  # no partial checkpoint file left behind: every one that exists loads
        torch.load(path, weights_only=True, map_location="cpu")
    if "--kill-in-write" in kill:  # the kill came mid-write: half a checkpoint in the temporary file, none in ckpt/
        (partial,) = (tmp_path / "tmp").iterdir()
        assert 0 < partial.stat().st_size < checkpoints[-1].stat().st_size
        assert (tmp_path / "ckpt" / "epoch=5.ckpt").exists() and not (tmp_path / "ckpt" / "epoch=6.ckpt").exists()
    weights, depths = _finished(tmp_path, "--resume", str(tmp_path / "ckpt" / "last.ckpt"))
    assert weights.keys() == twin_weights.keys()
    unequal = [name for name in weights if not torch.equal(weights[name], twin_weights[name])]
    assert not unequal, f"weights differ from the uninterrupted fit's: {unequal}"
    assert depths == {epoch: twin_depths[epoch] for epoch in depths}
