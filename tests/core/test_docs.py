"""docs/schedule-format.md stays true: every YAML example gives exactly the diagnostics printed below it."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from finetuning_scheduler.core import (
    ParamInventory,
    ResolvedSchedule,
    UnscheduledPolicy,
    ValidationOptions,
    render_all,
    resolve_yaml,
)

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "schedule-format.md"
CORE = ROOT / "core"
EXAMPLE = re.compile(
    r"<!-- example: (?P<name>\S+)(?P<options>[^>]*?) -->\n```yaml\n(?P<yaml>.*?)```\n```text\n(?P<out>.*?)```", re.S
)
MODEL = ParamInventory.from_names(
    [
        "embed.weight",
        *(f"layers.{i}.{part}" for i in range(12) for part in ("attn.weight", "attn.bias", "mlp.weight", "mlp.bias")),
        "norm.weight",
        "classifier.weight",
        "classifier.bias",
    ],
    aliases={"lm_head.weight": "embed.weight"},
)


def options_of(text: str) -> ValidationOptions:
    """``epoch_transitions_only=true unscheduled=warn`` to options (``unscheduled`` defaults to ignore here)."""
    given = dict(pair.split("=") for pair in text.split())
    return ValidationOptions(
        epoch_transitions_only=given.get("epoch_transitions_only") == "true",
        unscheduled=UnscheduledPolicy(given.get("unscheduled", "ignore")),
        reinit_supported=given.get("reinit_supported", "true") == "true",
    )


def diagnostics_of(text: str, options: ValidationOptions) -> str:
    result = resolve_yaml(text, MODEL, options, file="sched.yaml")
    resolved = result.value_or(None)
    found = resolved.warnings if isinstance(resolved, ResolvedSchedule) else result.failure()
    return render_all(found) + "\n" if found else ""


EXAMPLES = list(EXAMPLE.finditer(DOC.read_text(encoding="utf-8")))


def schedule_codes() -> set[str]:
    """Every diagnostic code the schedule modules of the core can produce, read from their source."""
    paths = (CORE / name for name in ("_yaml.py", "_structure.py", "_validate.py", "_pipeline.py"))
    code = "\n".join(line for path in paths for line in path.read_text().splitlines() if ">>>" not in line)
    return set(re.findall(r'\b(?:error|warning|make)\(\s*"([a-z0-9-]+)"', code))


def test_every_code_is_documented_with_an_example_where_a_file_can_show_it() -> None:
    codes = schedule_codes()
    assert len(codes) > 20, "the source scan found the codes"
    page = DOC.read_text(encoding="utf-8")
    assert {code for code in codes if f"`{code}`" not in page} == set()
    only_from_the_api = {"phase-key-duplicate", "schedule-empty", "invalid-option"}
    assert sorted(m["name"] for m in EXAMPLES) == sorted(codes - only_from_the_api)


@pytest.mark.parametrize("example", EXAMPLES, ids=[m["name"] for m in EXAMPLES])
def test_each_example_gives_what_the_page_says(example: re.Match[str]) -> None:
    rendered = diagnostics_of(example["yaml"], options_of(example["options"]))
    assert rendered == example["out"]
    assert f"[{example['name']}]" in rendered, "an example shows the diagnostic it is named after"


def test_the_python_sessions_on_the_page_run() -> None:
    failures, attempted = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert (failures, attempted > 0) == (0, True)
