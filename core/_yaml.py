"""YAML text in and out: a safe loader that keeps node positions and rejects duplicate keys, and a stable dumper.

Parsing text is pure; reading and writing files is the shell's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs
import yaml
from returns.result import Failure, Result, Success

from ._convert import make_converter
from ._diagnostics import Diagnostic, Diagnostics, Key, Location, Position, error
from ._records import Phase, Schedule, SourceMap


@attrs.frozen(eq=False)
class RawSchedule:
    """A schedule as plain data (what ``yaml.safe_load`` would give) with the position of every node.

    Attributes:
        data: the plain data (of a schedule made in memory, built when read and not kept: a generated 50k-phase
            schedule held as plain data made every garbage collection of the fit slower).
        source: positions of its nodes, keyed by path.
    """

    _given: Any = attrs.field(alias="data", repr=lambda given: "<in memory>" if given is _IN_MEMORY else repr(given))
    source: SourceMap = attrs.field(factory=SourceMap)
    structured: Schedule | None = attrs.field(default=None, eq=False, repr=False)
    """The schedule ``data`` was written from, when known (a generated one): structuring is then skipped, as
    structuring ``schedule_to_data(s)`` gives ``s`` back (a tested property)."""

    @property
    def data(self) -> Any:
        if self._given is _IN_MEMORY and self.structured is not None:  # RawSchedule.of always gives both
            return schedule_to_data(self.structured)
        return self._given

    @classmethod
    def of(cls, schedule: Schedule, file: str | None = None) -> RawSchedule:
        """The raw form of a schedule made in memory (no node positions: it was never text).

        >>> from ._records import Phase
        >>> RawSchedule.of(Schedule((Phase(("a",)),))).data
        {0: {'params': ['a']}}
        >>> RawSchedule.of(Schedule((Phase(("a",)),))) == RawSchedule({0: {'params': ['a']}})
        True
        """
        return cls(_IN_MEMORY, SourceMap(file), schedule)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RawSchedule):
            return NotImplemented
        return (self.data, self.source) == (other.data, other.source)

    def __hash__(self) -> int:
        raise TypeError("unhashable type: 'RawSchedule' (its data is a dict)")


_IN_MEMORY: Any = object()  # RawSchedule.of's data: schedule_to_data(structured), built when read


_INTEGER = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")  # ASCII digits and blanks: "¹" and "\x1f" pass str tests, not int()


def phase_index(key: object) -> int | None:
    """The phase index a top-level key stands for: ints, and strings of digits (Hydra writes those).

    >>> phase_index("2"), phase_index(2), phase_index(True), phase_index("x"), phase_index(1.5), phase_index("¹")
    (2, 2, None, None, None, None)
    >>> phase_index("0\\x1f")  # a control character is no blank to int()

    """
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and _INTEGER.fullmatch(key):
        return int(key)
    return None


def location_of(path: tuple[Key, ...]) -> Location:
    """The :class:`Location` of a path into a schedule.

    >>> str(location_of((1, "params", 0)))
    'phase 1 › params[0]'
    >>> str(location_of((1, "new_optimizer", "optimizer_init", "class_path")))
    'phase 1 › new_optimizer.optimizer_init.class_path'
    """
    phase = path[0] if path and isinstance(path[0], int) else None
    key = path[1] if len(path) > 1 and isinstance(path[1], str) else None
    rest = path[2:]
    index = rest[0] if rest and isinstance(rest[0], int) else None
    return Location(phase, key, index, tuple(rest[1:] if index is not None else rest))


def _position(mark: yaml.Mark | None) -> Position | None:
    return None if mark is None else Position(mark.line + 1, mark.column + 1)


def _normalise(key: Any, depth: int) -> Key:
    if depth == 0:
        index = phase_index(key)
        return key if index is None else index
    return key if isinstance(key, int | str) else str(key)


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _entries(loader: yaml.SafeLoader, node: yaml.Node, depth: int) -> Iterator[tuple[Key, yaml.Node, yaml.Node]]:
    """``(key, node to position the entry at, value node)`` for each entry of a mapping or a sequence."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:  # keys a merge (`<<: *base`) brings in are not written here
                yield _normalise(loader.construct_object(key_node, deep=True), depth), key_node, value_node
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield i, item, item


def _walk(
    loader: yaml.SafeLoader, node: yaml.Node, path: tuple[Key, ...], visited: set[int]
) -> Iterator[tuple[tuple[Key, ...], Any]]:
    """Yield ``(path, node)`` for every node below ``node``, mapping entries positioned at their key.

    A node reached again through an alias is not walked again: what lies below an alias is cited at the alias,
    a recursive alias ends, and a chain of aliases cannot make the walk exponential.
    """
    if id(node) in visited:
        return
    visited.add(id(node))
    for key, marker, value in _entries(loader, node, len(path)):
        yield (*path, key), marker
        yield from _walk(loader, value, (*path, key), visited)


def _positions_and_duplicates(
    loader: yaml.SafeLoader, root: yaml.Node, file: str | None
) -> tuple[dict[tuple[Key, ...], Position], Diagnostics]:
    positions: dict[tuple[Key, ...], Position] = {(): Position(1, 1)}
    duplicated: dict[tuple[Key, ...], Diagnostic] = {}
    for path, node in _walk(loader, root, (), set()):
        here = _position(node.start_mark)
        if here is None or any(path[:end] in duplicated for end in range(len(path))):
            continue  # the children of a duplicated key would only repeat the same report
        first = positions.setdefault(path, here)
        if first != here:
            duplicated[path] = _duplicate_key(path, first, here, file)
    return positions, tuple(duplicated.values())


def _duplicate_key(path: tuple[Key, ...], first: Position, second: Position, file: str | None) -> Diagnostic:
    message = f"duplicate key {path[-1]!r}: first written at line {first.line}, again at line {second.line}"
    hint = "merge the two entries; YAML would silently keep only the last one"
    found = error("duplicate-key", message, location_of(path), hint)
    return attrs.evolve(found, position=second, source=file)


def _syntax_error(exc: yaml.YAMLError, file: str | None) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    found = error("yaml-syntax", f"not valid YAML: {problem}", hint="check indentation, colons and quotes")
    return attrs.evolve(found, position=_position(mark), source=file)


def _unreadable(exc: yaml.reader.ReaderError, text: str, file: str | None) -> Diagnostic:
    """The reader refuses control characters before parsing starts, citing an offset: turn it into a position."""
    line_start = text.rfind("\n", 0, exc.position) + 1
    where = Position(text.count("\n", 0, exc.position) + 1, exc.position - line_start + 1)
    message = f"not valid YAML: character #x{exc.character:04x} is not allowed"
    found = error("yaml-syntax", message, hint="remove the control character (a stray byte from a copy and paste?)")
    return attrs.evolve(found, position=where, source=file)


def _too_deep(file: str | None) -> Diagnostic:
    hint = "a schedule needs a few levels of nesting, not hundreds"
    found = error("yaml-syntax", "not valid YAML: nested too deeply", hint=hint)
    return attrs.evolve(found, source=file)


_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)
"""libyaml's safe loader when PyYAML has it: several times faster on large schedules, with the same node positions.
A problem is always reported by the pure-Python loader, whose messages and positions the diagnostics rely on."""


def parse_yaml(text: str, file: str | None = None) -> Result[RawSchedule, Diagnostics]:
    """Parse YAML text safely, keeping node positions; duplicate keys at any depth are errors.

    >>> parse_yaml("0:\\n  params: [a]\\n").unwrap().source.position_of((0, "params"))
    Position(line=2, column=3)
    >>> [d.code for d in parse_yaml("0: {lr: 1}\\n0: {lr: 2}\\n").failure()]
    ['duplicate-key']
    """
    # libyaml accepts characters the YAML spec (and the pure reader) reject: those texts take the careful path.
    if _FAST_LOADER is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        fast = _parse_with(_FAST_LOADER, text, file)
        if isinstance(fast, Success):
            return fast
    return _parse_with(yaml.SafeLoader, text, file)


def _parse_with(loader_class: Any, text: str, file: str | None) -> Result[RawSchedule, Diagnostics]:
    try:
        loader = loader_class(text)
    except yaml.reader.ReaderError as exc:
        return Failure((_unreadable(exc, text, file),))
    try:
        return _load(loader, file)
    except yaml.YAMLError as exc:
        return Failure((_syntax_error(exc, file),))
    except RecursionError:  # PyYAML composes nested collections recursively
        return Failure((_too_deep(file),))
    finally:
        loader.dispose()


def _load(loader: yaml.SafeLoader, file: str | None) -> Result[RawSchedule, Diagnostics]:
    root = loader.get_single_node()
    if root is None:
        return Success(RawSchedule(None, SourceMap(file)))
    # Positions first: constructing the document flattens merge keys into the nodes, which would make a key that
    # overrides a merged one look like a duplicate.
    positions, duplicates = _positions_and_duplicates(loader, root, file)
    if duplicates:
        return Failure(duplicates)
    return Success(RawSchedule(loader.construct_document(root), SourceMap(file, positions)))


def schedule_to_data(schedule: Schedule) -> dict[int, Any]:
    """The schedule as plain data in the FTS format (``{0: {params: [...]}, 1: {...}}``), defaults omitted.

    >>> from ._records import Phase
    >>> schedule_to_data(Schedule((Phase(("a", "b")), Phase(("c",), 3, 1e-4))))
    {0: {'params': ['a', 'b']}, 1: {'params': ['c'], 'max_transition_epoch': 3, 'lr': 0.0001}}
    """
    conv = make_converter()
    return {i: _phase_data(phase, conv) for i, phase in enumerate(schedule.phases)}


_OPTION_DEFAULTS = tuple((field.name, field.default) for field in attrs.fields(Phase) if field.name != "params")


def _phase_data(phase: Phase, conv: Any) -> dict[str, Any]:
    # The converter's generic path costs ~3 us a phase; a phase of names alone (every generated one) is built here.
    if _defaults_only(phase):
        return {"params": list(phase.params)} if phase.params else {}
    data: dict[str, Any] = conv.unstructure(phase)
    return data


class _ScheduleDumper(yaml.SafeDumper):
    """Flow style for short scalar lists, block style elsewhere: readable and stable."""


def _represent_list(dumper: Any, data: Any) -> yaml.Node:  # either dumper class below
    flow = len(data) <= 4 and all(isinstance(v, int | float) for v in data)
    node: yaml.Node = dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)
    return node


_ScheduleDumper.add_representer(list, _represent_list)
_ScheduleDumper.add_representer(tuple, _represent_list)

_FAST_DUMPER: Any = None
if getattr(yaml, "CSafeDumper", None) is not None:  # libyaml's emitter: the same text, several times faster

    class _FastScheduleDumper(yaml.CSafeDumper):
        """:class:`_ScheduleDumper`'s representation, emitted by libyaml."""

    _FastScheduleDumper.add_representer(list, _represent_list)
    _FastScheduleDumper.add_representer(tuple, _represent_list)
    _FAST_DUMPER = _FastScheduleDumper


# A name the emitter would write as a plain scalar: identifier parts joined by dots. Any such string that a YAML
# resolver reads as something other than a string (``true``, ``null``, ``on``...) is excluded by _plain_safe.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVED_FIRST = frozenset(key for key in _RESOLVER.yaml_implicit_resolvers if key is not None)  # e.g. "t", "n"


def _plain_safe(text: str) -> bool:
    return (
        len(text) < 100  # the emitter's line width: longer scalars are left to it
        and _PLAIN_NAME.fullmatch(text) is not None
        and (text[0] not in _RESOLVED_FIRST or _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG)  # type: ignore[no-untyped-call]
    )


def _fast_phase(index: int, phase: dict[str, Any]) -> str | None:
    """The text the dumper writes for ``{index: phase}``, written directly when the phase holds only parameter names
    that are plain scalars and integer options (what generated schedules hold); ``None`` otherwise."""
    params = phase.get("params")
    lines = _names_lines(index, params) if isinstance(params, list) else None
    if lines is None:
        return None
    for key, value in phase.items():
        if key == "params":
            continue
        if type(key) is not str or not _plain_safe(key) or type(value) is not int:
            return None
        lines.append(f"  {key}: {value}")
    return "\n".join(lines) + "\n"


def _dump_data(data: dict[int, Any]) -> str:
    dumper = _FAST_DUMPER or _ScheduleDumper
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, width=100)


def dump_schedule(schedule: Schedule) -> str:
    """Write a schedule as readable, stable YAML (the same schedule always gives the same text).

    >>> from ._records import Phase
    >>> print(dump_schedule(Schedule((Phase(("head.weight",)), Phase(("body.*",), lr=1e-5)))), end="")
    0:
      params:
      - head.weight
    1:
      params:
      - body.*
      lr: 1.0e-05
    """
    # A phase of names alone (every generated phase) is written from the record, with no plain-data copy between.
    conv = make_converter()
    return "".join(
        (_fast_names(index, phase.params) if phase.params and _defaults_only(phase) else None)
        or dump_data({index: _phase_data(phase, conv)})
        for index, phase in enumerate(schedule.phases)
    )


def _defaults_only(phase: Phase) -> bool:
    return all(getattr(phase, name) == default for name, default in _OPTION_DEFAULTS)


def _fast_names(index: int, params: tuple[str, ...]) -> str | None:
    lines = _names_lines(index, params)
    return None if lines is None else "\n".join(lines) + "\n"


def _names_lines(index: int, params: tuple[str, ...] | list[str]) -> list[str] | None:
    """The dumper's lines for ``{index: {params: [...]}}``; ``None`` when a name is not a plain scalar."""
    if not all(type(name) is str and _plain_safe(name) for name in params):
        return None
    return [f"{index}:", "  params:" if params else "  params: []", *(f"  - {name}" for name in params)]


def dump_data(data: dict[int, Any]) -> str:
    """:func:`dump_schedule` of a schedule already in plain form (:func:`schedule_to_data`).

    >>> print(dump_data({0: {"params": ["head.weight"], "max_transition_epoch": 2}}), end="")
    0:
      params:
      - head.weight
      max_transition_epoch: 2
    """
    # PyYAML's representer costs ~30 us a parameter (3 s for a 100k-tensor model's generated schedule): phases of
    # plain names are written directly, as the dumper would (tests compare the two), any other through the dumper.
    return "".join(_fast_phase(index, phase) or _dump_data({index: phase}) for index, phase in data.items())
