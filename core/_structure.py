"""Plain data (from YAML or a dict) to a :class:`Schedule`, reporting every structural problem at once.

Structuring is lenient inside: a bad field is reported and left at its default, so that the rest of the schedule
is still checked (and validated against the model) and the user sees every problem in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.preconf.pyyaml import PyyamlConverter
from returns.result import Failure, Result, Success

from ._convert import describe, make_converter
from ._diagnostics import Diagnostic, Diagnostics, Key, Location, error
from ._records import LRSchedulerInit, OptimizerInit, Phase, Schedule, SourceMap
from ._transition import ImplicitReinit
from ._yaml import RawSchedule, location_of, phase_index

PHASE_KEYS: tuple[str, ...] = tuple(field.name for field in attrs.fields(Phase))
"""The keys a phase may have."""

_FIELD_TYPES: Mapping[str, Any] = {
    "max_transition_epoch": int,
    "lr": float,
    "new_optimizer": OptimizerInit,
    "new_lr_scheduler": LRSchedulerInit,
}


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    known = ", ".join(choices)
    return f"did you mean {close[0]!r}? (known keys: {known})" if close else f"known keys: {known}"


def _type_name(value: object) -> str:
    return type(value).__name__


def _structure_params(index: int, value: object) -> tuple[tuple[str, ...], Diagnostics]:
    where = Location(index, "params")
    if not isinstance(value, list | tuple):
        hint = f"write `params: [{value}]`" if isinstance(value, str) else "give a list of names or regexes"
        return (), (error("params-not-list", f"expected a list of names, got {_type_name(value)}", where, hint),)
    problems = tuple(
        error("param-not-string", f"expected a name or regex, got {_type_name(v)} {v!r}", Location(index, "params", i))
        for i, v in enumerate(value)
        if not isinstance(v, str)
    )
    return tuple(v for v in value if isinstance(v, str)), problems


def _structure_field(conv: PyyamlConverter, index: int, key: str, value: object) -> tuple[Any, Diagnostics]:
    try:
        return conv.structure(value, _FIELD_TYPES[key]), ()
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return None, _field_errors(exc, index, key)


def _field_errors(exc: Exception, index: int | None, key: str) -> Diagnostics:
    messages = cattrs.transform_error(exc, path="$", format_exception=describe)
    found: list[Diagnostic] = []
    for text in messages:
        message, _, path = text.rpartition(" @ ")
        subpath = _parse_cattrs_path(path)
        where = location_of((index, key, *subpath)) if index is not None else Location(None, key, subpath=subpath)
        found.append(error("invalid-value", message or text, where))
    return tuple(found)


def _parse_cattrs_path(path: str) -> tuple[Key, ...]:
    """``$.optimizer_init.class_path`` or ``$[2]`` to a tuple of keys."""
    steps: list[Key] = []
    for part in path.removeprefix("$").replace("[", ".[").split("."):
        if part.startswith("[") and part.endswith("]"):
            inner = part[1:-1].strip("'\"")
            steps.append(int(inner) if inner.isdigit() else inner)
        elif part:
            steps.append(part)
    return tuple(steps)


def _unknown_keys(index: int, raw: Mapping[Any, Any]) -> Diagnostics:
    return tuple(
        error(
            "unknown-key", f"unknown phase key {key!r}", Location(index, str(key)), _did_you_mean(str(key), PHASE_KEYS)
        )
        for key in raw
        if key not in PHASE_KEYS
    )


def structure_phase(index: int, raw: object, conv: PyyamlConverter) -> tuple[Phase, Diagnostics]:
    """Structure one phase leniently: the best :class:`Phase` that can be built, and what was wrong.

    >>> phase, problems = structure_phase(1, {"params": ["a"], "lr": "fast", "mte": 3}, make_converter())
    >>> phase.params, [p.code for p in problems]
    (('a',), ['invalid-value', 'unknown-key'])
    """
    if not isinstance(raw, Mapping):
        message = f"a phase must be a mapping with `params`, got {_type_name(raw)}"
        return Phase(), (error("phase-not-mapping", message, Location(index)),)
    problems = list(_unknown_keys(index, raw))
    params, param_problems = _structure_params(index, raw.get("params", []))
    problems.extend(param_problems)
    fields: dict[str, Any] = {}
    for key in _FIELD_TYPES.keys() & raw.keys():
        value, field_problems = _structure_field(conv, index, key, raw[key])
        problems.extend(field_problems)
        if value is not None:
            fields[key] = value
    return Phase(params, **fields), _in_key_order(problems, raw)


def structure_implicit_reinit(
    optim_cfg: Mapping[str, Any] | None, lr_cfg: Mapping[str, Any] | None, explicit_schedule: bool = False
) -> Result[ImplicitReinit, Diagnostics]:
    """FTS's implicit-mode ``reinit_optim_cfg`` / ``reinit_lr_cfg`` as records, checked as strictly as a phase's
    ``new_optimizer`` / ``new_lr_scheduler`` blocks; problems are located at the argument (no file position).

    >>> structure_implicit_reinit({"optimizer_init": {"class_path": "torch.optim.Adam"}}, None).unwrap().optimizer
    OptimizerInit(optimizer_init=ClassInit(class_path='torch.optim.Adam', init_args=mappingproxy({})))
    >>> [str(d.location) for d in structure_implicit_reinit({"optimizer_init": {}}, None).failure()]
    ['reinit_optim_cfg.optimizer_init.class_path']
    """
    conv = make_converter()
    optimizer, problems = _implicit_block(conv, optim_cfg, OptimizerInit, "reinit_optim_cfg")
    lr_scheduler, lr_problems = _implicit_block(conv, lr_cfg, LRSchedulerInit, "reinit_lr_cfg")
    problems += lr_problems + _implicit_rules(lr_scheduler, explicit_schedule)
    return Failure(problems) if problems else Success(ImplicitReinit(optimizer, lr_scheduler))


def _implicit_block(
    conv: PyyamlConverter, cfg: Mapping[str, Any] | None, cls: type, argument: str
) -> tuple[Any, Diagnostics]:
    if not cfg:
        return None, ()
    try:
        return conv.structure(cfg, cls), ()
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return None, _field_errors(exc, None, argument)


def _implicit_rules(lr_scheduler: LRSchedulerInit | None, explicit_schedule: bool) -> Diagnostics:
    if lr_scheduler is None:
        return ()
    if explicit_schedule:
        hint = "give each phase its own new_lr_scheduler, or drop ft_schedule to use the generated schedule"
        return (error("invalid-value", "reinit_lr_cfg is for implicit mode, not with an explicit ft_schedule",
                      Location(None, "reinit_lr_cfg"), hint),)  # fmt: skip
    if lr_scheduler.init_pg_lrs is not None:
        where = Location(None, "reinit_lr_cfg", subpath=("init_pg_lrs",))
        return (error("invalid-value", "init_pg_lrs cannot be given: reinit_lr_cfg applies to every phase", where),)
    return ()


def _in_key_order(problems: list[Diagnostic], raw: Mapping[Any, Any]) -> Diagnostics:
    order = {key: i for i, key in enumerate(raw)}
    return tuple(sorted(problems, key=lambda d: order.get(d.location.key, -1)))


def _phase_keys(data: Mapping[Any, Any], source: SourceMap) -> tuple[dict[int, Any], Diagnostics]:
    phases: dict[int, Any] = {}
    problems: list[Diagnostic] = []
    for key, value in data.items():
        index = phase_index(key)
        if index is None:
            hint = "phase keys are the integers 0, 1, 2, ... (written as numbers or quoted digits)"
            found = error("phase-key-not-int", f"phase key {key!r} is not an integer", Location(), hint)
            # A Location cannot name a key that is no phase index: cite the key's own line, not the file's top.
            problems.append(attrs.evolve(found, position=source.positions.get((key,))))
        elif index in phases:
            problems.append(error("phase-key-duplicate", f"phase {index} is given twice", Location(index)))
        else:
            phases[index] = value
    return phases, tuple(problems)


def _contiguity(indices: list[int]) -> Diagnostics:
    expected = list(range(len(indices)))
    if sorted(indices) == expected:
        return ()
    message = f"phase keys must be 0..{len(indices) - 1} without gaps; found {sorted(indices)}"
    hint = f"renumber the phases as {expected}"
    return (error("phase-keys-not-contiguous", message, Location(), hint),)


def locate(diagnostics: Diagnostics, source: SourceMap) -> Diagnostics:
    """Attach source positions and the file name to diagnostics.

    >>> from ._diagnostics import Position
    >>> sm = SourceMap("s.yaml", {(1, "lr"): Position(4, 3)})
    >>> locate((error("x", "bad", Location(1, "lr")),), sm)[0].render()
    's.yaml:4:3: error[x] phase 1 › lr: bad'
    """
    return tuple(_located(d, source) for d in diagnostics)


def _located(diagnostic: Diagnostic, source: SourceMap) -> Diagnostic:
    position = diagnostic.position or source.position_of(diagnostic.location.path)
    related = diagnostic.related_position
    message = diagnostic.message
    if diagnostic.related is not None and related is None:
        related = source.positions.get(diagnostic.related.path)
        if related is not None:  # both places, so the reader finds the first one too
            message = f"{message} (line {related.line}, column {related.column})"
    return attrs.evolve(
        diagnostic,
        message=message,
        position=position,
        source=diagnostic.source or source.file,
        related_position=related,
    )


def structure_leniently(raw: RawSchedule) -> tuple[Schedule, Diagnostics]:
    """The best :class:`Schedule` that can be built from plain data, and every structural problem.

    >>> schedule, problems = structure_leniently(RawSchedule({"0": {"params": ["a"]}, 2: {"params": ["b"]}}))
    >>> len(schedule.phases), [p.code for p in problems]
    (2, ['phase-keys-not-contiguous'])
    """
    if raw.structured is not None:
        return attrs.evolve(raw.structured, source=raw.source), ()
    if not isinstance(raw.data, Mapping) or not raw.data:
        message = f"a schedule must be a non-empty mapping of phase index to phase, got {raw.data!r:.60}"
        return Schedule((), raw.source), locate((error("schedule-not-mapping", message),), raw.source)
    by_index, problems = _phase_keys(raw.data, raw.source)
    problems += _contiguity(list(by_index))
    conv = make_converter()
    phases: list[Phase] = []
    ordered = sorted(by_index)
    for index in ordered:
        phase, phase_problems = structure_phase(index, by_index[index], conv)
        phases.append(phase)
        problems += phase_problems
    return Schedule(tuple(phases), _by_ordinal(raw.source, ordered)), locate(problems, raw.source)


def _by_ordinal(source: SourceMap, written: list[int]) -> SourceMap:
    """The positions keyed by each phase's place in the schedule, not its written key (they differ only when the
    keys have gaps): a later diagnostic about the second phase then cites the second phase's lines.

    >>> from ._diagnostics import Position
    >>> _by_ordinal(SourceMap("s", {(0,): Position(1, 1), (2, "lr"): Position(4, 3)}), [0, 2]).positions[(1, "lr")]
    Position(line=4, column=3)
    """
    if written == list(range(len(written))):
        return source
    ordinal = {key: place for place, key in enumerate(written)}
    positions = {}
    for path, position in source.positions.items():
        if not path:
            positions[path] = position
            continue
        written_index = phase_index(path[0])
        place = None if written_index is None else ordinal.get(written_index)
        if place is not None:
            positions[(place, *path[1:])] = position
    return SourceMap(source.file, positions)


def as_raw(schedule: RawSchedule | Mapping[Any, Any]) -> RawSchedule:
    """Accept either parsed YAML (with positions) or a plain dict (FTS's dict schedules).

    >>> as_raw({0: {"params": ["a"]}}).source.file is None
    True
    """
    return schedule if isinstance(schedule, RawSchedule) else RawSchedule(schedule)


def structure_schedule(raw: RawSchedule | Mapping[Any, Any]) -> Result[Schedule, Diagnostics]:
    """Plain data to a :class:`Schedule`, or every structural error.

    The input is never mutated (FTS rewrites the caller's dict in place; this does not).

    >>> schedule = structure_schedule({0: {"params": ["head.weight"]}, "1": {"params": ["body.*"], "lr": "1e-5"}})
    >>> schedule.unwrap().phases[1]
    Phase(params=('body.*',), max_transition_epoch=-1, lr=1e-05, new_optimizer=None, new_lr_scheduler=None)
    >>> [d.code for d in structure_schedule({0: {"params": "head.weight"}}).failure()]
    ['params-not-list']
    """
    schedule, problems = structure_leniently(as_raw(raw))
    return Failure(problems) if problems else Success(schedule)
