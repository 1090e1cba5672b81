"""A GPT-2-style model (embedding tied to the head) sharded on two CPU processes (gloo): FSDP2 through the
ModelParallelStrategyAdapter's ``fsdp_plan`` (the module has no ``configure_model``), and FSDP1 with original and
with flat parameters. Each trains the same model as the others and as one process, and resumes exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fts_support import process_failure

SCRIPT = Path(__file__).with_name("tied_sharded_fit.py")
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


def _run(
    out: Path, name: str, devices: int, resume_from: Path | None, kind: str, plan: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), str(out), name, str(devices), *([str(resume_from)] if resume_from else [])]
    env = {**os.environ, "FTS_TEST_STRATEGY": kind, "FTS_TEST_PLAN": plan}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=out, env=env)


def _fit(
    out: Path, name: str, devices: int, resume_from: Path | None = None, kind: str = "fsdp2", plan: str = "plain"
) -> dict[str, object]:
    done = _run(out, name, devices, resume_from, kind, plan)
    assert done.returncode == 0, process_failure(done.stderr)
    return dict(json.loads((out / f"{name}.json").read_text()))


def _max_difference(out: Path, a: str, b: str) -> float:
    x, y = (torch.load(out / f"{name}.pt", weights_only=True) for name in (a, b))
    assert x.keys() == y.keys()
    return max(float((x[key] - y[key]).abs().max()) for key in x)


@pytest.fixture(scope="module")
def fsdp2_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    out = tmp_path_factory.mktemp("tied")
    return out, _fit(out, "two", 2)


def test_planned_fsdp2_sharding_of_a_tied_model_trains_resumes_and_matches_one_process(
    fsdp2_run: tuple[Path, dict[str, object]],
) -> None:
    out, two = fsdp2_run
    assert two["sharded"] == "DTensor" and two["tied"] is True  # the plan sharded it; the tie survived
    assert two["history"] == [[2, 1, True], [4, 2, True]]  # transitions after restoring the best checkpoint
    # Phase 0 named the head by its tied name (lm_head.weight): the shared tensor was thawed, not dropped as in FTS.
    assert two["groups"] == [3, 2, 2] and "model.wte.weight" in two["trainable"]  # type: ignore[operator]
    one = _fit(out, "one", 1)
    assert one["history"] == two["history"] and one["groups"] == two["groups"]
    # The same global batch on one process: the same fit, up to float rounding.
    assert _max_difference(out, "two_rank0", "one_rank0") < 1e-5
    resumed = _fit(out, "resumed", 2, out / "two_ck" / "epoch=2.ckpt")
    assert resumed["history"] == [[4, 2, True]] and resumed["groups"] == two["groups"]
    for rank in (0, 1):  # AdamW state of the rebuilt phases loads too: the resumed fit equals the uninterrupted one
        assert _max_difference(out, f"two_rank{rank}", f"resumed_rank{rank}") == 0.0


@pytest.mark.parametrize("kind", ["fsdp1", "fsdp1-flat"])
def test_fsdp1_trains_the_tied_model_as_fsdp2_does(fsdp2_run: tuple[Path, dict[str, object]], kind: str) -> None:
    out, fsdp2 = fsdp2_run
    fsdp1 = _fit(out, kind, 2, kind=kind)
    assert fsdp1["tied"] is True and fsdp1["history"] == fsdp2["history"]
    assert fsdp1["trainable"] == fsdp2["trainable"]  # logical names, whatever the flattening
    assert fsdp1["groups"] == ([1, 1, 1] if kind == "fsdp1-flat" else fsdp2["groups"])  # one flat parameter per unit
    assert _max_difference(out, "two_rank0", f"{kind}_rank0") < 1e-5


def test_activation_checkpointing_in_the_plan_changes_names_not_training(
    fsdp2_run: tuple[Path, dict[str, object]],
) -> None:
    out, plain = fsdp2_run
    checkpointed = _fit(out, "act_ckpt", 2, plan="act_ckpt")  # block 0 wrapped, block 1 composable
    assert checkpointed["history"] == plain["history"] and checkpointed["trainable"] == plain["trainable"]
    assert _max_difference(out, "two_rank0", "act_ckpt_rank0") == 0.0


def test_a_plan_that_shards_tied_parameters_apart_is_rejected_at_setup(tmp_path: Path) -> None:
    done = _run(tmp_path, "split", 2, None, "fsdp2", "split_tie")
    assert done.returncode != 0
    assert (
        "error[fsdp-split-tie] fsdp_plan: 'model.lm_head.weight' is tied to 'model.wte.weight', but they would be "
        "sharded in different units ('model.lm_head' and 'model')"
    ) in done.stderr
