"""FSDP1 through Lightning's FSDPStrategy on 2 CPU processes (gloo; Lightning needs CUDA for it, so the tests use
the small CPU subclass in ``tests/_support/cpu_fsdp.py``; ``tests/gpu`` runs the real thing): with and without
``use_orig_params``, ``awp_overrides``, ``restore_best``, resume equal to the uninterrupted fit, and a schedule
that would split a flat parameter rejected at setup."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fts_support import process_failure

SCRIPT = Path(__file__).with_name("fsdp1_fit.py")
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _run(out: Path, name: str, *options: str) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)
    command = [sys.executable, str(SCRIPT), str(out), name, *options]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=out)


def _fit(out: Path, name: str, *options: str) -> dict[str, object]:
    done = _run(out, name, *options)
    assert done.returncode == 0, process_failure(done.stderr)
    return dict(json.loads((out / f"{name}.json").read_text()))


def _weights(out: Path, name: str) -> dict[str, torch.Tensor]:
    return dict(torch.load(out / f"{name}.pt", weights_only=True))


@pytest.mark.parametrize("mode", ["--orig", "--flat"])
def test_fsdp1_phases_restore_best_and_resume_exactly(tmp_path: Path, mode: str) -> None:
    full = _fit(tmp_path, "full", mode)
    assert full["units"] == ["model.0", "model.1", "model.2", "model.3"]  # model.3 wrapped through awp_overrides
    assert full["history"] == [[1, 1, True], [2, 2, True]]
    # use_orig_params=False: one flat parameter per unit in the optimizer; otherwise the original parameters.
    assert full["groups"] == ([1, 1, 2] if mode == "--flat" else [2, 2, 4])
    resumed = _fit(tmp_path, "resumed", mode, "--resume", "epoch=1.ckpt")
    assert resumed["history"] == [[2, 2, True]] and resumed["groups"] == full["groups"]
    a, b = _weights(tmp_path, "full"), _weights(tmp_path, "resumed")
    assert sorted(a) == [f"model.{i}.{p}" for i in range(4) for p in ("bias", "weight")]  # logical names
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_flat_parameters_train_the_same_model_as_original_parameters(tmp_path: Path) -> None:
    _fit(tmp_path / "orig", "fit", "--orig")
    _fit(tmp_path / "flat", "fit", "--flat")
    a, b = _weights(tmp_path / "orig", "fit"), _weights(tmp_path / "flat", "fit")
    assert all(torch.allclose(a[key], b[key], atol=1e-6) for key in a)


def test_a_schedule_splitting_a_flat_parameter_is_rejected_at_setup_with_the_fix(tmp_path: Path) -> None:
    done = _run(tmp_path, "split", "--flat", "--split")
    assert done.returncode != 0
    assert (
        "error[fsdp-flat-param-split] phase 1 › params: 'model.2' is one FSDP flat parameter, but its parameters "
        "thaw in different phases (phase 0: model.2.weight; phase 1: model.2.bias)"
    ) in done.stderr
    assert "or use FSDPStrategy(use_orig_params=True)" in done.stderr
    assert not (tmp_path / "ck").exists()  # before any training step
    bad = _run(tmp_path / "bad", "bad", "--flat", "--bad-awp")
    assert bad.returncode != 0
    assert "error[awp-no-match] awp_overrides.model.nothing: The module or regex 'model.nothing'" in bad.stderr
    assert "error[invalid-regex] awp_overrides.model.(" in bad.stderr
    allowed = _fit(tmp_path, "split_orig", "--orig", "--split")  # mixed requires_grad is fine with original params
    assert allowed["history"] == [[1, 1, True], [2, 2, True]]


def test_a_new_optimizer_restores_the_best_checkpoints_weights_only(tmp_path: Path) -> None:
    # The best checkpoint holds AdamW state, phase 2 brings SGD: only the weights may be restored.
    result = _fit(tmp_path, "reinit", "--flat", "--reinit")
    assert result["history"] == [[1, 1, True], [2, 2, True]] and result["optimizer"] == "SGD"
    assert result["groups"] == [1, 1, 2]


def test_parameters_no_phase_names_are_reported_and_stay_frozen(tmp_path: Path) -> None:
    # FTS under FSDP leaves such parameters frozen without a word.
    done = _run(tmp_path, "partial", "--flat", "--partial")
    assert done.returncode == 0, process_failure(done.stderr)
    assert "warning[unscheduled-params] schedule: 4 parameter(s) are never thawed by any phase: model.0.weight" in (
        done.stderr
    )
    result = json.loads((tmp_path / "partial.json").read_text())
    assert result["trainable"] == ["model.2.bias", "model.2.weight", "model.3.bias", "model.3.weight"]
