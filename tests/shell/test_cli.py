"""``validate``, ``plan`` and ``gen`` as a user runs them: real schedule files, models named ``module:callable``
or by a LightningCLI config, built on the meta device; exit status 0 valid, 1 invalid, 2 usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from finetuning_scheduler.shell.app.cli import main

BROKEN = """\
0:
  params: [head.weight, head.bias]
1:
  params: ['layers.3.*']
  lr: -1
2:
  params: ['layers.3.weight', 'nothing.*']
  max_transition_epoch: two
3:
  paramz: ['layers.[0-2].*']
"""
GOOD = """\
0:
  params: [head.weight, head.bias]
1:
  params: ['layers\\.3\\..*']
  lr: 1.0e-4
  max_transition_epoch: 3
2:
  params: ['layers\\.[0-2]\\..*']
  lr: 1.0e-5
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_problem_is_printed_with_its_file_position_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = _write(tmp_path, "bad.yaml", BROKEN)
    assert main(["validate", str(schedule), "--model", "cli_models:Net"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert f"{schedule}:5:3: error[invalid-lr] phase 1 › lr: lr must be a positive finite number, got -1.0" in out
    assert any(line.startswith(f"{schedule}:8:3: error[invalid-value] phase 2 › max_transition_epoch") for line in out)
    assert any(line.startswith(f"{schedule}:7:12: error[param-in-several-phases] phase 2 › params[0]") for line in out)
    assert any(line.startswith(f"{schedule}:7:31: error[no-match] phase 2 › params[1]") for line in out)
    assert any(line.startswith(f"{schedule}:10:3: error[unknown-key] phase 3 › paramz") for line in out)
    assert "    hint: did you mean 'params'?" in "\n".join(out)
    assert out[-1] == f"{schedule}: invalid: 5 error(s), 1 warning(s)"


def test_a_valid_schedule_exits_0_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = _write(tmp_path, "good.yaml", GOOD)
    assert main(["validate", str(schedule), "--model", "cli_models:Net"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{schedule}: valid: 3 phase(s) thawing 10 of 10 parameter tensors, 0 warning(s)"
    assert "building cli_models:Net on the meta device" in captured.err


def test_json_diagnostics_carry_the_same_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = _write(tmp_path, "bad.yaml", BROKEN)
    assert main(["validate", str(schedule), "--model", "cli_models:Net", "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["valid"] is False and document["errors"] == 5 and document["warnings"] == 1
    first = document["diagnostics"][0]
    assert (first["code"], first["line"], first["column"], first["location"]) == ("invalid-lr", 5, 3, "phase 1 › lr")
    assert first["file"] == str(schedule) and first["path"] == [1, "lr"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--model", "no_such_module:Net"], "cannot import module 'no_such_module'"),
        (["--model", "cli_models:Missing"], "module 'cli_models' has no attribute 'Missing'"),
        (["--model", "cli_models:Net", "--init-args", "{bad"], "--init-args is not valid JSON"),
        (["--model", "cli_models:Net", "--init-args", "[1]"], "--init-args must be a JSON object"),
        (["--model", "cli_models:Net", "--init-args", '{"colour": 1}'], "building cli_models:Net failed: TypeError"),
        (["--model", "cli_models:broken"], "this factory always fails"),
        (["--model", "cli_models:Net", "--adapter", "no_such_adapter"], "no_such_adapter"),
    ],
)
def test_usage_errors_exit_2_with_one_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], expected: str
) -> None:
    schedule = _write(tmp_path, "good.yaml", GOOD)
    assert main(["validate", str(schedule), *arguments]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert err.count("error:") == 1


def test_a_missing_schedule_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "none.yaml"), "--model", "cli_models:Net"]) == 2
    assert "Could not find specified fine-tuning scheduling file" in capsys.readouterr().err


def test_the_model_can_come_from_a_lightning_cli_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path, "cfg.yaml", "model:\n  class_path: cli_models.Net\n  init_args:\n    depth: 2\n")
    schedule = _write(tmp_path, "s.yaml", "0:\n  params: [head.weight, head.bias]\n1:\n  params: ['layers.*']\n")
    assert main(["validate", str(schedule), "--config", str(config)]) == 0
    assert "thawing 6 of 6 parameter tensors" in capsys.readouterr().out
    bare = _write(tmp_path, "bare.yaml", "model:\n  depth: 2\n")  # a CLI whose model class is fixed: --model names it
    assert main(["validate", str(schedule), "--config", str(bare), "--model", "cli_models:Net"]) == 0


def test_a_multi_billion_parameter_model_validates_without_its_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3.2 billion parameters would need 13 GB allocated; on the meta device they need none (timing: not asserted).
    schedule = _write(tmp_path, "good.yaml", GOOD)
    assert main(["validate", str(schedule), "--model", "cli_models:huge"]) == 0
    assert "thawing 10 of 98 parameter tensors" in capsys.readouterr().out


def test_through_an_adapter_the_schedule_uses_its_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = _write(tmp_path, "good.yaml", GOOD)
    assert main(["validate", str(schedule), "--model", "cli_models:Net", "--adapter", "unwrapped_names"]) == 0
    assert main(["validate", str(schedule), "--model", "cli_models:Net", "--strategy", "fsdp"]) == 0
    assert main(["validate", str(schedule), "--model", "cli_models:Net", "--strategy", "deepspeed"]) == 0


def test_gen_writes_a_schedule_that_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "generated.yaml"
    assert main(["gen", "--model", "cli_models:Net", "--policy", "blocks", "-o", str(target)]) == 0
    phases = yaml.safe_load(target.read_text())
    assert phases[0]["params"][0].startswith("head") and len(phases) == 5  # the head, then one phase per block
    assert main(["validate", str(target), "--model", "cli_models:Net"]) == 0
    capsys.readouterr()
    assert main(["gen", "--model", "cli_models:Net"]) == 0  # FTS's policy, to standard output
    assert yaml.safe_load(capsys.readouterr().out)[0] == {"params": ["head.bias", "head.weight"]}


def test_plan_shows_each_phase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schedule = _write(tmp_path, "good.yaml", GOOD)
    assert main(["plan", str(schedule), "--model", "cli_models:Net", "--plain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["phase", "thaws", "share", "trainable"]
    assert lines[1].split()[:2] == ["0", "2"] and "optimizer's own" in lines[1] and "epoch" not in lines[1]
    assert "0.0001" in lines[2] and "epoch 3 at the latest" in lines[2] and "8.2 KiB" in lines[2]  # 1,056 x 4 B x 2
    assert "100.0%" in lines[3] and "the last phase" in lines[3]
    assert main(["plan", str(_write(tmp_path, "bad.yaml", BROKEN)), "--model", "cli_models:Net"]) == 1


def test_the_console_script_and_module_entry_point_work(tmp_path: Path) -> None:
    schedule = _write(tmp_path, "good.yaml", GOOD)
    support = Path(__file__).resolve().parents[1] / "_support"
    command = [sys.executable, "-m", "finetuning_scheduler", "validate", str(schedule), "--model", "cli_models:Net"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=support, timeout=120)
    assert done.returncode == 0, done.stderr
    script = Path(sys.executable).with_name("finetuning-scheduler")
    done = subprocess.run([str(script), *command[3:]], capture_output=True, text=True, cwd=support, timeout=120)
    assert done.returncode == 0 and "valid: 3 phase(s)" in done.stdout, done.stderr


def test_several_schedules_are_checked_against_one_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = _write(tmp_path, "good.yaml", GOOD), _write(tmp_path, "bad.yaml", BROKEN)
    assert main(["validate", str(good), str(bad), "--model", "cli_models:Net"]) == 1
    captured = capsys.readouterr()
    assert f"{good}: valid" in captured.out and f"{bad}: invalid" in captured.out
    assert captured.err.count("building cli_models:Net") == 1


def test_the_pre_commit_hook_runs_validate_on_the_schedules_it_matches(tmp_path: Path) -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    (hook,) = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "validate-ft-schedules" and hook["language"] == "python"
    pattern = re.compile(hook["files"])
    assert pattern.search("configs/BertModule_ft_schedule.yaml") and pattern.search("my_ft_schedule.yml")
    assert not pattern.search("configs/trainer.yaml")
    good = _write(tmp_path, "Net_ft_schedule.yaml", GOOD)
    bad = _write(tmp_path, "Other_ft_schedule.yaml", BROKEN)
    program, command = hook["entry"].split()
    entry = [str(Path(sys.executable).with_name(program)), command, "--model", "cli_models:Net"]
    support = Path(__file__).resolve().parents[1] / "_support"
    done = subprocess.run([*entry, str(good), str(bad)], capture_output=True, text=True, cwd=support, timeout=120)
    assert done.returncode == 1 and f"{bad}:5:3: error[invalid-lr]" in done.stdout


def test_the_cli_pages_example_prints_what_the_page_shows(tmp_path: Path) -> None:
    import re

    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    section = page[page.index("## `validate") :]
    model = re.search(r"```python\n# my_models.py\n(.*?)```", section, re.DOTALL)
    schedule = re.search(r"```yaml\n# bad.yaml\n(.*?)```", section, re.DOTALL)
    shown = re.search(r"```text\n\$ (.*?)\n(.*?)```", section, re.DOTALL)
    assert model and schedule and shown
    (tmp_path / "my_models.py").write_text(model.group(1))
    (tmp_path / "bad.yaml").write_text(schedule.group(1))
    command = shown.group(1).split()
    assert command[:3] == ["python", "-m", "finetuning_scheduler"]
    done = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert done.stdout == shown.group(2)


def test_validate_imports_no_class_outside_the_allowed_modules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import uuid

    module, marker = f"untrusted_cli_{uuid.uuid4().hex[:8]}", tmp_path / "imported"
    (tmp_path / f"{module}.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    reinit = {"optimizer_init": {"class_path": f"{module}.Optimizer"}}
    schedule = yaml.safe_load(GOOD)
    schedule[1]["new_optimizer"] = reinit
    path = _write(tmp_path, "untrusted.yaml", yaml.safe_dump(schedule))
    sys.path.insert(0, str(tmp_path))
    try:
        args = ["validate", str(path), "--model", "cli_models:Net", "--allowed-class-prefix", "torch.optim"]
        assert main(args) == 1
    finally:
        sys.path.remove(str(tmp_path))
    out = capsys.readouterr().out
    assert f"error[reinit-class-not-allowed] phase 1 › new_optimizer.optimizer_init.class_path: '{module}." in out
    assert not marker.exists(), "validate imported the untrusted module"
