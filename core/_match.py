"""Matching schedule entries to parameter names, as FTS does: exact names first, then ``re.match``.

``re.match`` anchors at the start only and ``.`` matches any character, so ``blocks.1.*`` also matches
``blocks.10.attn``. :func:`overmatched` finds such surprises so validation can warn about them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs


@attrs.frozen
class NameIndex:
    """The model's names prepared for matching: a set for exact names, prefix buckets for fast regexes.

    Attributes:
        names: canonical names in registration order.
        members: the same names as a set, for exact-name lookups.
    """

    names: tuple[str, ...]
    members: frozenset[str]
    # Memos of `order` and by_prefix(): they only cache functions of `names`, so the record stays observably
    # immutable, and schedules of exact names (the implicit schedule) never pay for them.
    _memo: dict[str, dict[str, int]] = attrs.field(factory=dict, init=False, eq=False, repr=False)
    _buckets: dict[int, dict[str, list[str]]] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    @classmethod
    def build(cls, names: tuple[str, ...]) -> NameIndex:
        """Index names in O(n).

        >>> "b" in NameIndex.build(("a", "b")).members
        True
        """
        return cls(names, frozenset(names))

    @property
    def order(self) -> Mapping[str, int]:
        """Each name's position in ``names`` (computed on first use).

        >>> NameIndex.build(("a", "b")).order["b"]
        1
        """
        order = self._memo.get("order")
        if order is None:
            order = self._memo["order"] = {name: i for i, name in enumerate(self.names)}
        return order

    def by_prefix(self, length: int) -> dict[str, list[str]]:
        """Names grouped by their first ``length`` characters (computed once per length, then cached)."""
        bucket = self._buckets.get(length)
        if bucket is None:
            bucket = {}
            for name in self.names:
                bucket.setdefault(name[:length], []).append(name)
            self._buckets[length] = bucket
        return bucket


_META = frozenset("\\[](){}*+?|^$")


# An escape, or a character set (a `]` right after `[` or `[^` is a literal, as `re` reads it).
_ESCAPES_AND_SETS = re.compile(r"\\.|\[\^?\]?(?:\\.|[^\]])*\]", re.DOTALL)


def _branches_at_top(pattern: str) -> bool:
    """Whether ``pattern`` has a ``|`` outside any group: then its matches share no prefix (``head|classifier``).

    Escapes and character sets are dropped first, so ``a\\|b`` and ``a[|]b`` have none.

    >>> _branches_at_top("head|classifier.*"), _branches_at_top("layers.(0|1).*"), _branches_at_top("a[|]b")
    (True, False, False)
    >>> _branches_at_top("x[](]|b"), _branches_at_top("x[^]|]b")
    (True, False)
    """
    depth = 0
    for char in _ESCAPES_AND_SETS.sub("", pattern):
        depth += (char == "(") - (char == ")")
        if char == "|" and depth == 0:
            return True
    return False


def _literal_prefix_length(pattern: str) -> int:
    """How many leading characters of ``pattern`` match exactly one character each (literals or ``.``)."""
    if _branches_at_top(pattern):
        return 0
    for i, char in enumerate(pattern):
        quantified = i + 1 < len(pattern) and pattern[i + 1] in "*+?{"
        if char in _META or quantified:
            return i
    return len(pattern)


def regex_matches(pattern: re.Pattern[str], index: NameIndex) -> list[str]:
    """All names that ``pattern.match`` accepts, in registration order.

    Names are bucketed by the length of the pattern's fixed-width prefix, and only buckets whose key matches that
    prefix are searched: exact FTS semantics, far fewer ``match`` calls on large models.

    >>> idx = NameIndex.build(("model.1.weight", "model.10.weight", "model.2.bias"))
    >>> regex_matches(re.compile("model.1.*"), idx)
    ['model.1.weight', 'model.10.weight']
    """
    length = _literal_prefix_length(pattern.pattern)
    if length == 0:
        return [name for name in index.names if pattern.match(name)]
    head = re.compile(pattern.pattern[:length])
    # Names shorter than the prefix cannot match: each prefix character consumes exactly one name character.
    groups = [group for key, group in index.by_prefix(length).items() if len(key) == length and head.fullmatch(key)]
    found = [name for group in groups for name in group if pattern.match(name)]
    # Each group is in registration order already; only names gathered from several groups need sorting.
    return found if len(groups) < 2 else sorted(found, key=index.order.__getitem__)


def compile_pattern(pattern: str) -> re.Pattern[str] | str:
    """Compile a schedule entry as a regex, or return why it is not one.

    >>> compile_pattern("a(")
    'missing ), unterminated subpattern at position 1'
    """
    try:
        return re.compile(pattern)
    except re.error as exc:
        return str(exc)


def _strict_variant(pattern: str) -> str:
    """The pattern with every literal digit run forbidden to continue with another digit (``1`` not ``10``)."""
    out: list[str] = []
    depth = {"[": 0, "{": 0}
    i = 0
    while i < len(pattern):
        char = pattern[i]
        out.append(char)
        if char == "\\":
            out.append(pattern[i + 1 : i + 2])
            i += 2
            continue
        depth = _track_brackets(char, depth)
        follows = pattern[i + 1 : i + 2]
        # The number ends here unless a digit, a quantifier, or what may itself match a digit ([...], (...), \d)
        # comes next: `layers.1[0-9]` asks for 10-19 on purpose, `layers.1.` gets 10-19 by accident.
        ends_number = char.isdigit() and (follows == "" or follows not in "0123456789*+?{[(\\")
        if ends_number and not any(depth.values()):
            out.append(r"(?!\d)")
        i += 1
    return "".join(out)


def _track_brackets(char: str, depth: dict[str, int]) -> dict[str, int]:
    opening = {"[": "[", "{": "{"}
    closing = {"]": "[", "}": "{"}
    if char in opening:
        return {**depth, opening[char]: depth[opening[char]] + 1}
    if char in closing:
        return {**depth, closing[char]: max(0, depth[closing[char]] - 1)}
    return depth


def overmatched(pattern: re.Pattern[str], matched: list[str]) -> list[str]:
    """Names a regex matched only because a number in it continued (``blocks.1`` matching ``blocks.10``).

    >>> overmatched(re.compile("blocks.1.*"), ["blocks.1.w", "blocks.10.w", "blocks.12.b"])
    ['blocks.10.w', 'blocks.12.b']
    >>> overmatched(re.compile("layer.{0,11}.w"), ["layer.3.w"])
    []
    >>> overmatched(re.compile("blocks.1[0-9].*"), ["blocks.10.w", "blocks.19.b"])
    []
    """
    try:
        strict = re.compile(_strict_variant(pattern.pattern))
    except re.error:
        return []
    return [name for name in matched if not strict.match(name)]
