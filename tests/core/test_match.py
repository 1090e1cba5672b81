"""Matching entries to names: the prefix buckets must give exactly what `re.match` over every name gives."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from finetuning_scheduler.core._match import NameIndex, compile_pattern, overmatched, regex_matches

NAMES = st.lists(st.text(alphabet="ab10._", min_size=0, max_size=6), max_size=12, unique=True)
PATTERNS = st.text(alphabet="ab10._|()[]^$*+?{},\\", min_size=1, max_size=9).filter(
    lambda p: not isinstance(compile_pattern(p), str)
)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # `re` warns about some set syntax ("[[") it still accepts
@given(names=NAMES, pattern=PATTERNS)
@example(names=["head.w", "classifier.w"], pattern="head|classifier")
@example(names=["ab", "b"], pattern="ab*$|b")
@example(names=["x]", "b"], pattern="x[](]|b")
@example(names=["a1", "a10", "a2"], pattern="a1{1,2}")
@example(names=["aa", "a"], pattern="a$")  # match, not search: "aa" ends with a match but does not start with one
def test_bucketed_matching_is_plain_re_match(names: list[str], pattern: str) -> None:
    compiled = re.compile(pattern)
    assert regex_matches(compiled, NameIndex.build(tuple(names))) == [n for n in names if compiled.match(n)]


def test_matches_come_in_registration_order() -> None:
    index = NameIndex.build(("b.2", "a.1", "b.1", "a.2"))
    assert regex_matches(re.compile("..[12]"), index) == ["b.2", "a.1", "b.1", "a.2"]


def test_an_invalid_regex_is_a_message_not_an_exception() -> None:
    assert compile_pattern("layers.(1") == "missing ), unterminated subpattern at position 7"
    assert isinstance(compile_pattern("layers.1"), re.Pattern)


@pytest.mark.parametrize(
    ("pattern", "names", "surprising"),
    [
        ("layers.1.*", ["layers.1.w", "layers.10.w", "layers.11.b"], ["layers.10.w", "layers.11.b"]),
        ("layers.1", ["layers.1.w", "layers.12"], ["layers.12"]),
        ("layers.1[0-9].*", ["layers.10.w", "layers.19.w"], []),
        ("layers.(10|11).*", ["layers.10.w", "layers.11.w"], []),
        (r"layers\.1\..*", ["layers.1.w"], []),
        ("layers.{0,11}.w", ["layers.3.w"], []),
        ("layers.1\\d.*", ["layers.12.w"], []),
        ("head.*", ["head.weight"], []),
    ],
)
def test_overmatch_finds_numbers_that_ran_on(pattern: str, names: list[str], surprising: list[str]) -> None:
    compiled = re.compile(pattern)
    assert all(compiled.match(name) for name in names), "the cases only list names the regex matches"
    assert overmatched(compiled, names) == surprising
