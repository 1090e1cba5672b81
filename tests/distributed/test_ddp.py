"""DDP on CPU with the gloo backend: two processes agree on every transition."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.mark.slow
@pytest.mark.distributed
def test_scheduled_fit_under_two_process_ddp(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    script = Path(__file__).with_name("ddp_fit.py")
    done = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The fixture logs val_loss per process (no sync_dist): said once, since a resume could then decide otherwise.
    assert done.stderr.count("whose value differs between processes: log it with `sync_dist=True`") == 1
    result = json.loads(out.read_text())
    assert result["world"] == 2 and result["final_depth"] == 2 and result["groups"] == 3
    depths = list(result["depths"].values())
    assert depths == sorted(depths) and depths[0] == 0 and depths[-1] == 2
    assert (tmp_path / "BoringFTSModel_ft_schedule.yaml").is_file()
    rank0, rank1 = (torch.load(tmp_path / f"weights_rank{rank}.pt", weights_only=True) for rank in (0, 1))
    differing = [name for name in rank0 if not torch.equal(rank0[name], rank1[name])]
    assert not differing, f"the processes' weights drifted apart in {differing}"
