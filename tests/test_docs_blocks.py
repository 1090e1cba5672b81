"""The code blocks of the README and docs/ stay true: every Python block compiles, every YAML block parses, and
every block that is a schedule is a well-formed one (the deliberately broken ones, marked ``<!-- example: code
-->`` in docs/schedule-format.md, are checked against their printed diagnostics by tests/core/test_docs.py). The
README's first schedule is checked against a BERT-style model's parameter names."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest
import yaml

from finetuning_scheduler.core import ParamInventory, ValidationOptions, parse_yaml, resolve_yaml, structure_schedule

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- (?:example: [a-z0-9-]+|broken on purpose[^>]*) -->\n)?```(python|yaml)\n(.*?)```", re.DOTALL)


def _blocks(kind: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, match in enumerate(BLOCK.finditer(page.read_text())):
            if match.group(2) == kind and not match.group(1):
                found.append((f"{page.relative_to(ROOT)}#{number}", match.group(3)))
    return found


@pytest.mark.parametrize(("where", "code"), _blocks("python"), ids=[w for w, _ in _blocks("python")])
def test_python_blocks_compile_and_sessions_run(where: str, code: str) -> None:
    """A block written as an interpreter session (``>>>``) is run and its printed output compared; any other block
    must at least compile (tests/test_docs_run.py runs those, page by page)."""
    if not code.lstrip().startswith(">>>"):
        compile(code, where, "exec")
        return
    test = doctest.DocTestParser().get_doctest(code, {}, where, where, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{where}: {runner.failures} example(s) print otherwise than the page says"


@pytest.mark.parametrize(("where", "text"), _blocks("yaml"), ids=[w for w, _ in _blocks("yaml")])
def test_yaml_blocks_parse_and_schedules_are_well_formed(where: str, text: str) -> None:
    document = yaml.safe_load(text)
    if isinstance(document, dict) and document and all(isinstance(key, int) for key in document):
        raw = parse_yaml(text, where).unwrap()
        problems = structure_schedule(raw).failure() if not structure_schedule(raw).value_or(None) else ()
        assert not problems, [p.render() for p in problems]


def test_the_readmes_first_schedule_fits_a_bert_style_model() -> None:
    schedule = _blocks("yaml")[0]
    assert schedule[0].startswith("README.md")
    names = ["model.classifier.weight", "model.classifier.bias", "model.pooler.dense.weight", "model.pooler.dense.bias"]
    names += [f"model.embeddings.{part}.weight" for part in ("word_embeddings", "position_embeddings")]
    names += [f"model.encoder.layer.{i}.{part}" for i in range(12) for part in ("attention.weight", "output.bias")]
    resolved = resolve_yaml(schedule[1], ParamInventory.from_names(names), ValidationOptions(), file="README.md")
    assert resolved.value_or(None) is not None, [d.render() for d in resolved.failure()]
    assert not resolved.unwrap().unscheduled
