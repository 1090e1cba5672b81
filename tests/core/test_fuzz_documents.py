"""Fuzzing the codec and the validator with YAML documents: random nested data written as YAML (schedule-shaped or
not), and the same text cut off at any point. Whatever the document, ``resolve_yaml`` returns a resolved schedule
or diagnostics that are each located: in the file, at a line and column unless the problem is the schedule's as a
whole. Nothing raises."""

from __future__ import annotations

import itertools
from typing import Any

import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from finetuning_scheduler.core import ParamInventory, ResolvedSchedule, resolve_yaml

NAMES = ["head.weight", "head.bias", "body.0.weight", "body.0.bias", "body.1.weight"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.sampled_from(NAMES),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
ENTRIES = st.one_of(st.sampled_from([*NAMES, "head.*", r"body\.[01]\..*", ".*", "(", "nowhere"]), st.text(max_size=5))
PHASE = st.fixed_dictionaries(
    {},
    optional={
        "params": st.one_of(st.lists(ENTRIES, max_size=4), VALUES),
        "max_transition_epoch": st.one_of(st.integers(-2, 5), SCALARS),
        "lr": st.one_of(st.floats(1e-6, 1.0), SCALARS),
        "new_optimizer": VALUES,
        "new_lr_scheduler": VALUES,
        "extra": VALUES,
    },
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[int, dict[str, Any]]:
    """The names cut into phases in some order, then at most one key of one phase set to anything."""
    names = draw(st.permutations(NAMES))
    cuts = sorted(draw(st.sets(st.integers(1, len(names) - 1), max_size=3)))
    bounds = [0, *cuts, len(names)]
    document = {i: {"params": names[a:b]} for i, (a, b) in enumerate(itertools.pairwise(bounds))}
    if draw(st.booleans()):
        document[draw(st.sampled_from(sorted(document)))].update(draw(PHASE))
    return document


DOCUMENTS = st.one_of(
    near_valid(),
    st.dictionaries(st.one_of(st.integers(-1, 5), st.text(max_size=2)), st.one_of(PHASE, VALUES), max_size=5),
    VALUES,
)


def _check(text: str) -> None:
    result = resolve_yaml(text, ParamInventory.from_names(NAMES), file="s.yaml")
    resolved = result.value_or(None)
    if isinstance(resolved, ResolvedSchedule):
        event("resolved")
        return
    diagnostics = result.failure()
    assert any(d.is_error for d in diagnostics)
    event("failure: " + min(d.code for d in diagnostics if d.is_error))
    for d in diagnostics:
        assert d.source == "s.yaml", d.render()
        assert d.position is not None or d.location.phase is None, d.render()


@given(DOCUMENTS)
def test_any_yaml_document_resolves_or_fails_located(document: Any) -> None:
    _check(yaml.safe_dump(document, sort_keys=False))


@given(DOCUMENTS, st.data())
def test_any_yaml_document_cut_anywhere_resolves_or_fails_located(document: Any, data: st.DataObject) -> None:
    text = yaml.safe_dump(document, sort_keys=False)
    _check(text[: data.draw(st.integers(0, len(text)))])


def test_a_key_that_is_not_a_string_inside_a_block_is_a_located_error() -> None:
    # Found by the cut-document property: a cut-off line left `null:` as a key of a reinitialisation block.
    text = "0:\n  params: [head.weight]\n1:\n  params: [head.bias]\n  new_lr_scheduler:\n    null: 1\n"
    failure = resolve_yaml(text, ParamInventory.from_names(NAMES), file="s.yaml").failure()
    rendered = [d.render() for d in failure if d.is_error]
    assert any(line.startswith("s.yaml:") and "unknown key(s): None" in line for line in rendered), rendered
