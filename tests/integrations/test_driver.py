"""The driver API for any training loop: validation, phases, parameter groups, LR schedulers, state and resume."""

from __future__ import annotations

import doctest
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from driver_support import EXAMPLES, ROOT, driver_trace, load_example, plain_loop
from torch import nn

import finetuning_scheduler
from finetuning_scheduler.core import GenerationPolicy, Reason, Schedule, generate
from finetuning_scheduler.shell.engine.torch_helpers import inventory
from finetuning_scheduler.shell.integrations import driver as driver_module
from finetuning_scheduler.shell.integrations.driver import (
    PhasePlateau,
    ScheduleDriver,
    ScheduleError,
    ScheduleWarning,
    unwrap_module,
)

example = load_example("plain_pytorch")
SCHEDULE = example.SCHEDULE  # head.* (until epoch 2), body.2.* (lr 5e-3, until 4), body.0.* (lr 2e-3, until 6)
ES_SCHEDULE = {0: {"params": ["head.*"]}, 1: {"params": ["body.2.*"], "lr": 1e-3}, 2: {"params": ["body.0.*"]}}


def _driver(schedule: Any = SCHEDULE, **options: Any) -> tuple[ScheduleDriver, nn.Module, torch.optim.Optimizer, Any]:
    torch.manual_seed(0)
    model = example.Net()
    driver = ScheduleDriver(model, schedule, **options)
    optimizer, scheduler = example.make_optimizer(driver.trainable_parameters())
    driver.attach(optimizer, [scheduler])
    return driver, model, optimizer, scheduler


def _run_subprocess(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)


# -- imports -------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_driver_imports_no_lightning() -> None:
    code = (
        "import finetuning_scheduler.shell.integrations.driver, sys; "
        "assert not any(m.split('.')[0]=='lightning' for m in sys.modules), sorted(sys.modules)"
    )
    result = _run_subprocess(code)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_facade_exports_the_driver_lazily_and_never_imports_the_hf_module() -> None:
    code = (
        "import sys, finetuning_scheduler as f; "
        "assert 'torch' not in sys.modules, 'torch'; "
        "assert f.ScheduleDriver.__module__ == 'finetuning_scheduler.shell.integrations.driver'; "
        "assert issubclass(f.ScheduleError, ValueError) and f.EpochTrace; "
        "assert not any(m.split('.')[0] in ('lightning', 'transformers') for m in sys.modules), 'lightning'; "
        "[getattr(f, name) for name in f.__all__]; "
        "assert 'finetuning_scheduler.shell.integrations.hf' not in sys.modules, 'hf'"
    )
    result = _run_subprocess(code)
    assert result.returncode == 0, result.stderr
    assert {"ScheduleDriver", "ScheduleError", "EpochTrace"} <= set(finetuning_scheduler.__all__)


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_plain_example_runs_as_a_script_without_lightning() -> None:
    code = (
        f"import runpy, sys; runpy.run_path({str(EXAMPLES / 'plain_pytorch.py')!r}, run_name='__main__'); "
        "assert not any(m.split('.')[0]=='lightning' for m in sys.modules)"
    )
    result = _run_subprocess(code)
    assert result.returncode == 0, result.stderr
    phases = [int(p) for p in re.findall(r"phase (\d+)", result.stdout)]
    assert phases == [0, 0, 1, 1, 2, 2, 2, 2], result.stdout


def test_driver_doctests_pass() -> None:
    outcome = doctest.testmod(driver_module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted >= 3 and outcome.failed == 0


# -- loading and validation ----------------------------------------------------------------------------------------


def test_every_schedule_error_is_reported_at_once_with_positions(tmp_path: Path) -> None:
    path = tmp_path / "sched.yaml"
    path.write_text(
        "0:\n  params: [head.weight, nope.*]\n  max_transition_epoch: 2\n1:\n  params: [body.2.*]\n  lr: -1\n"
        "2:\n  params: [body.0.*]\n  max_transtion_epoch: 3\n",
        encoding="utf-8",
    )
    with pytest.raises(ScheduleError) as raised:
        ScheduleDriver(example.Net(), path)
    message = str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert [d.code for d in raised.value.diagnostics if d.is_error] == ["no-match", "invalid-lr", "unknown-key"]
    assert message.startswith("The fine-tuning schedule has 3 errors")
    assert f"{path}:2:" in message and f"{path}:6:3: error[invalid-lr]" in message and f"{path}:9:" in message


def test_a_missing_file_is_a_schedule_error(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="schedule-file"):
        ScheduleDriver(example.Net(), tmp_path / "missing.yaml")


def test_reinitialisation_blocks_with_bad_classes_are_rejected_with_their_position(tmp_path: Path) -> None:
    path = tmp_path / "reinit.yaml"
    path.write_text(
        "0:\n  params: [head.*]\n1:\n  params: [body.*]\n  new_optimizer:\n    optimizer_init:\n"
        "      class_path: torch.optim.SGDD\n      init_args: {lr: 0.1}\n  new_lr_scheduler:\n"
        "    lr_scheduler_init:\n      class_path: torch.optim.lr_scheduler.StepLR\n      init_args: {gamma: 0.5}\n",
        encoding="utf-8",
    )
    with pytest.raises(ScheduleError) as raised:
        ScheduleDriver(example.Net(), path)
    text = str(raised.value)
    assert re.search(rf"{re.escape(str(path))}:7:\d+: error\[reinit-class\] phase 1 › new_optimizer", text)
    assert re.search(rf"{re.escape(str(path))}:12:\d+: error\[reinit-init-args\] phase 1 › new_lr_scheduler", text)
    assert "step_size" in text  # StepLR's missing argument, found by trying it


def test_path_dict_and_record_resolve_alike(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "0:\n  params: [head.*]\n  max_transition_epoch: 2\n1:\n  params: [body.2.*]\n  lr: 0.005\n"
        "  max_transition_epoch: 4\n2:\n  params: [body.0.*]\n  lr: 0.002\n  max_transition_epoch: 6\n",
        encoding="utf-8",
    )
    from_path = ScheduleDriver(example.Net(), path).resolved
    from_dict = ScheduleDriver(example.Net(), SCHEDULE).resolved
    assert from_path == from_dict
    assert from_path.phases[0].names == ("head.weight", "head.bias")


def test_no_schedule_generates_the_fts_default_and_can_save_it(tmp_path: Path) -> None:
    model = example.Net()
    driver = ScheduleDriver(model)
    names = inventory(model).names
    # FTS's implicit schedule: two parameters per phase, last-registered first.
    assert [set(p.names) for p in driver.resolved.phases] == [set(names[::-1][i : i + 2]) for i in (0, 2, 4)]
    assert driver.trainable_parameters() == [model.head.weight, model.head.bias]
    saved = driver.save_schedule(tmp_path / "generated.yaml")
    assert ScheduleDriver(example.Net(), saved).resolved == driver.resolved


def test_a_schedule_record_and_another_generation_policy() -> None:
    model = example.Net()
    by_module = ScheduleDriver(model, generation=GenerationPolicy.MODULE)
    assert [p.names for p in by_module.resolved.phases] == [
        ("head.weight", "head.bias"),
        ("body.2.weight", "body.2.bias"),
        ("body.0.weight", "body.0.bias"),
    ]
    record: Schedule = generate(inventory(model), GenerationPolicy.MODULE)
    assert ScheduleDriver(example.Net(), record).resolved == by_module.resolved


def test_schedule_warnings_are_python_warnings() -> None:
    with pytest.warns(ScheduleWarning, match="unscheduled-params"):
        ScheduleDriver(example.Net(), {0: {"params": ["head.*"]}})


def test_epoch_transitions_only_needs_an_epoch_on_every_phase() -> None:
    with pytest.raises(ScheduleError, match="missing-max-transition-epoch"):
        ScheduleDriver(example.Net(), ES_SCHEDULE, epoch_transitions_only=True)


# -- phase 0 and the optimizer -------------------------------------------------------------------------------------


def test_construction_freezes_everything_but_phase_zero() -> None:
    model = example.Net()
    ScheduleDriver(model, SCHEDULE)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]


def test_attach_rejects_an_optimizer_with_frozen_parameters() -> None:
    model = example.Net()
    driver = ScheduleDriver(model, SCHEDULE)
    with pytest.raises(ValueError, match=r"frozen parameter body\.0\.weight is in an optimizer group"):
        driver.attach(torch.optim.SGD(model.parameters(), lr=0.1))


def test_epoch_start_needs_an_optimizer() -> None:
    with pytest.raises(RuntimeError, match="attach"):
        ScheduleDriver(example.Net(), SCHEDULE).epoch_start(0)


def test_unwrap_module_finds_the_module_inside_data_parallel() -> None:
    model = example.Net()
    assert unwrap_module(nn.DataParallel(model)) is model
    assert ScheduleDriver(nn.DataParallel(model), SCHEDULE).module is model


# -- transitions ---------------------------------------------------------------------------------------------------


def test_epoch_transitions_add_named_groups_with_their_lrs() -> None:
    driver, _, optimizer, scheduler = _driver(SCHEDULE)
    depths = {epoch: driver.epoch_start(epoch).depth for epoch in range(7)}
    assert depths == {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 2}
    assert [g.get("name") for g in optimizer.param_groups] == [None, "phase1", "phase2"]
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.005, 0.002]
    assert len(scheduler.base_lrs) == 3
    assert [(c.epoch, c.depth, c.reason) for c in driver.history] == [(2, 1, Reason.EPOCH), (4, 2, Reason.EPOCH)]
    assert driver.in_final_phase and driver.depth_remaining == 0


def test_trace_records_the_transition_and_is_plain_data() -> None:
    driver, *_ = _driver(SCHEDULE)
    driver.epoch_start(0)
    trace = driver.epoch_start(2)
    assert (trace.epoch, trace.depth, trace.reason) == (2, 1, Reason.EPOCH)
    assert trace.trainable == ("body.2.weight", "body.2.bias", "head.weight", "head.bias")
    assert trace.groups == (("head.weight", "head.bias"), ("body.2.weight", "body.2.bias"))
    assert json.loads(json.dumps(trace.as_dict()))["reason"] == "EPOCH"
    assert driver.epoch_start(3).reason is None


def test_at_most_one_phase_per_epoch_and_repeated_calls_change_nothing() -> None:
    driver, *_ = _driver(SCHEDULE)
    first = driver.epoch_start(5)  # phases 1 and 2 are both overdue: only one step
    assert first.depth == 1
    assert driver.epoch_start(5) == first
    assert driver.epoch_start(6).depth == 2


def test_max_depth_stops_the_schedule() -> None:
    driver, *_ = _driver(SCHEDULE, max_depth=1)
    assert [driver.epoch_start(e).depth for e in range(8)] == [0, 0, 1, 1, 1, 1, 1, 1]


def test_max_epochs_follows_the_final_phase_epoch() -> None:
    driver, *_ = _driver(SCHEDULE)
    assert (driver.max_epochs(3), driver.max_epochs(9)) == (6, 9)


def test_convergence_drives_phases_unless_epochs_only() -> None:
    driver, *_ = _driver(ES_SCHEDULE)
    assert driver.epoch_start(0, phase_converged=True).depth == 1
    assert driver.epoch_start(1).depth == 1
    assert driver.epoch_start(2, phase_converged=True).reason is Reason.EARLY_STOPPING
    assert driver.in_final_phase
    epochs_only = {k: {**v, "max_transition_epoch": 10} for k, v in ES_SCHEDULE.items()}
    strict, *_ = _driver(epochs_only, epoch_transitions_only=True)
    assert strict.epoch_start(3, phase_converged=True).depth == 0


def test_phase_plateau_drives_a_loop_to_the_end() -> None:
    driver, *_ = _driver(ES_SCHEDULE)
    plateau = PhasePlateau(patience=1, min_delta=0.01)
    losses = iter([1.0, 0.5, 0.5, 0.4, 0.4, 0.3, 0.3, 0.3])
    depths = []
    for epoch in range(20):
        trace = driver.epoch_start(epoch, phase_converged=plateau.converged)
        if trace.reason is not None:
            plateau.reset()
        depths.append(trace.depth)
        if plateau.update(next(losses)) and driver.in_final_phase:
            break
    assert depths == [0, 0, 0, 1, 1, 2, 2]


def test_no_decay_substrings_split_each_phase_like_lightning() -> None:
    driver, _, optimizer, _ = _driver(SCHEDULE, no_decay=["bias"], weight_decay=0.05)
    driver.epoch_start(2)
    names = [g.get("name") for g in optimizer.param_groups]
    assert names == [None, "phase1", "phase1/no_decay"]
    assert [g["weight_decay"] for g in optimizer.param_groups][1:] == [0.05, 0.0]


def test_no_decay_predicate() -> None:
    driver, model, optimizer, _ = _driver(SCHEDULE, no_decay=lambda name: name.endswith("bias"))
    driver.epoch_start(2)
    groups = optimizer.param_groups
    assert [g.get("name") for g in groups] == [None, "phase1", "phase1/no_decay"]
    assert groups[1]["params"] == [model.body[2].weight] and groups[2]["params"] == [model.body[2].bias]
    assert groups[1]["weight_decay"] == optimizer.defaults["weight_decay"] and groups[2]["weight_decay"] == 0.0


def test_lambda_schedulers_are_extended_and_can_scale_new_groups() -> None:
    torch.manual_seed(0)
    model = example.Net()
    driver = ScheduleDriver(model, SCHEDULE, apply_lambdas=True)
    optimizer = torch.optim.SGD(driver.trainable_parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5**epoch)
    driver.attach(optimizer, [scheduler])
    for epoch in range(3):
        driver.epoch_start(epoch)
        optimizer.step()
        scheduler.step()
    assert len(scheduler.lr_lambdas) == len(scheduler.base_lrs) == 2
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.005 * 0.5**3)  # added at 0.005 * 0.25, stepped once


def test_frozen_batchnorm_stops_tracking_until_thawed() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    schedule = {0: {"params": ["2.*"], "max_transition_epoch": 1}, 1: {"params": ["[01].*"], "max_transition_epoch": 2}}
    driver = ScheduleDriver(model, schedule, frozen_bn_track_running_stats=False)
    driver.attach(torch.optim.SGD(driver.trainable_parameters(), lr=0.1))
    assert model[1].track_running_stats is False
    driver.epoch_start(1)
    assert model[1].track_running_stats is True


# -- state and resume ----------------------------------------------------------------------------------------------


def test_state_is_plain_data_that_loads_with_weights_only() -> None:
    driver, *_ = _driver(SCHEDULE)
    for epoch in range(5):
        driver.epoch_start(epoch)
    state = driver.state_dict()
    assert json.loads(json.dumps(state)) == state
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True) == state
    assert state["fit_state"]["depth"] == 2


@pytest.fixture(scope="module")
def uninterrupted() -> tuple[list[Any], dict[str, torch.Tensor], dict[int, bytes]]:
    checkpoints: dict[int, bytes] = {}
    traces, weights, _ = plain_loop(SCHEDULE, 8, checkpoints=checkpoints, epoch_transitions_only=True)
    return traces, weights, checkpoints


@pytest.mark.parametrize(("epoch", "before_attach"), [(0, False), (1, False), (2, True), (3, False), (5, True)])
def test_resume_continues_exactly(uninterrupted: Any, epoch: int, before_attach: bool) -> None:
    traces, weights, checkpoints = uninterrupted
    resumed, resumed_weights, driver = plain_loop(
        SCHEDULE, 8, resume=checkpoints[epoch], load_before_attach=before_attach, epoch_transitions_only=True
    )
    assert driver_trace(resumed) == {e: s for e, s in driver_trace(traces).items() if e > epoch}
    assert resumed_weights.keys() == weights.keys()
    assert all(torch.equal(resumed_weights[k], weights[k]) for k in weights)
    assert [(c.epoch, c.depth) for c in driver.history] == [(2, 1), (4, 2)]


def test_resume_needs_a_fresh_driver_and_a_matching_state() -> None:
    driver, *_ = _driver(SCHEDULE)
    with pytest.raises(ValueError, match="Not a ScheduleDriver state"):
        driver.load_state_dict({"fit_state": {"depth": 1}})
    with pytest.raises(ValueError, match="only 3 phases"):
        driver.load_state_dict({"format": 1, "fit_state": {"depth": 7}})
    driver.epoch_start(2)
    with pytest.raises(RuntimeError, match="fresh driver"):
        driver.load_state_dict({"format": 1, "fit_state": {"depth": 1}})


def test_a_checkpoint_optimizer_loads_only_onto_rebuilt_groups(uninterrupted: Any) -> None:
    _, _, checkpoints = uninterrupted
    saved = torch.load(io.BytesIO(checkpoints[4]), weights_only=True)
    driver, _, optimizer, _ = _driver(SCHEDULE, epoch_transitions_only=True)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optimizer.load_state_dict(saved["optimizer"])  # without the driver's state: phase-0 groups only
    driver.load_state_dict(saved["driver"])
    optimizer.load_state_dict(saved["optimizer"])
    assert [g.get("name") for g in optimizer.param_groups] == [None, "phase1", "phase2"]


# -- docs ----------------------------------------------------------------------------------------------------------


def test_the_guide_shows_the_plain_example_verbatim() -> None:
    guide = (ROOT / "docs" / "own-trainer.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    assert (EXAMPLES / "plain_pytorch.py").read_text(encoding="utf-8") in blocks


# -- reinitialisation ----------------------------------------------------------------------------------------------

REINIT_SCHEDULE = {
    0: {"params": ["head.*"], "max_transition_epoch": 1},
    1: {
        "params": ["body.2.*"],
        "lr": 5e-3,
        "max_transition_epoch": 2,
        "new_optimizer": {"optimizer_init": {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-3}}},
        "new_lr_scheduler": {
            "lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.ExponentialLR", "init_args": {"gamma": 0.5}}
        },
    },
    2: {"params": ["body.0.*"], "lr": 2e-3},
}


def _reinit_loop(driver: ScheduleDriver, model: nn.Module, epochs: range) -> list[tuple[str, tuple[float, ...]]]:
    """A plain loop that steps whatever the driver says is the optimizer and scheduler now."""
    seen = []
    data = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    for epoch in epochs:
        driver.epoch_start(epoch)
        optimizer = driver.optimizer
        assert optimizer is not None
        seen.append((type(optimizer).__name__, tuple(group["lr"] for group in optimizer.param_groups)))
        optimizer.zero_grad()
        model(data).pow(2).mean().backward()
        optimizer.step()
        for scheduler in driver.schedulers:
            scheduler.step()
    return seen


def test_the_driver_reinitialises_the_optimizer_and_scheduler_and_resumes_into_them() -> None:
    driver, model, _, _ = _driver(REINIT_SCHEDULE)
    seen = _reinit_loop(driver, model, range(4))
    assert [name for name, _ in seen] == ["AdamW", "Adam", "Adam", "Adam"]  # the example builds AdamW
    assert seen[1][1] == (1e-3, 5e-3) and seen[2][1] == (5e-4, 2.5e-3, 2e-3)  # the new scheduler halves both
    saved = {"driver": driver.state_dict(), "optimizer": driver.optimizer.state_dict()}  # type: ignore[union-attr]
    saved["scheduler"] = driver.schedulers[0].state_dict()
    resumed, model2, _, _ = _driver(REINIT_SCHEDULE)
    model2.load_state_dict(model.state_dict())
    resumed.load_state_dict(saved["driver"])
    assert type(resumed.optimizer).__name__ == "Adam" and len(resumed.optimizer.param_groups) == 3  # type: ignore[union-attr]
    resumed.optimizer.load_state_dict(saved["optimizer"])  # type: ignore[union-attr]
    resumed.schedulers[0].load_state_dict(saved["scheduler"])
    assert [g["lr"] for g in resumed.optimizer.param_groups] == [g["lr"] for g in driver.optimizer.param_groups]  # type: ignore[union-attr]
