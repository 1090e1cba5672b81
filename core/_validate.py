"""Validate a schedule against a model's parameters: every problem in one pass, each with its position."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostic, Diagnostics, Location, error, errors_only, warning
from ._match import NameIndex, compile_pattern, overmatched, regex_matches
from ._records import (
    LRSchedulerInit,
    ParamInventory,
    Phase,
    PlainPhases,
    ResolvedPhases,
    ResolvedSchedule,
    Schedule,
    UnscheduledPolicy,
    ValidationOptions,
    params_of,
)
from ._structure import locate

_EXAMPLES = 5
_ONE_PHASE = "each parameter must belong to exactly one phase"
_PL_LRS_KEYS = frozenset({"interval", "frequency", "name", "monitor", "strict", "reduce_on_plateau", "opt_idx"})


@attrs.frozen
class _Matched:
    """What one ``params`` entry that is not a parameter's exact name resolved to."""

    where: Location
    names: tuple[str, ...]
    problems: Diagnostics = ()


def _preview(names: list[str] | tuple[str, ...]) -> str:
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (f", … ({len(names)} in all)" if len(names) > _EXAMPLES else "")


def _close_names(entry: str, index: NameIndex) -> str | None:
    if len(index.names) > 20_000:  # difflib scans every name; a hint is not worth seconds of setup
        return None
    close = difflib.get_close_matches(entry, index.names, n=3, cutoff=0.6)
    return f"did you mean {', '.join(close)}?" if close else None


def _overmatch_warning(pattern: re.Pattern[str], found: list[str], where: Location) -> Diagnostics:
    surprising = overmatched(pattern, found)
    if not surprising:
        return ()
    message = f"regex {pattern.pattern!r} also matches {_preview(surprising)}"
    hint = r"re.match is not anchored at a number's end: write e.g. 'blocks\.1\..*' to match only block 1"
    return (warning("regex-overmatch", message, where, hint),)


def _match_regex(entry: str, where: Location, index: NameIndex) -> _Matched:
    pattern = compile_pattern(entry)
    if isinstance(pattern, str):
        return _Matched(where, (), (error("invalid-regex", f"{entry!r} is not a valid regex: {pattern}", where),))
    found = regex_matches(pattern, index)
    if not found:
        message = f"{entry!r} did not match any parameter name in the model"
        return _Matched(where, (), (error("no-match", message, where, _close_names(entry, index)),))
    return _Matched(where, tuple(found), _overmatch_warning(pattern, found, where))


def match_entry(entry: str, where: Location, index: NameIndex, aliases: Mapping[str, str]) -> _Matched:
    """Resolve one ``params`` entry: an exact name, another name of a shared (tied) parameter, or a regex.

    A tied alias (``lm_head.weight`` of a head tied to ``wte.weight``) stands for the registered name: the phase
    thaws the shared tensor. FTS drops the alias instead, which leaves the tensor frozen for the whole fit when no
    phase names it by its registered name.
    """
    if entry in index.members:
        return _Matched(where, (entry,))
    if entry in aliases:
        registered = aliases[entry]
        message = f"{entry!r} is another name of the shared (tied) parameter {registered!r}: it is thawed as that"
        return _Matched(where, (registered,), (warning("shared-param-alias", message, where),))
    return _match_regex(entry, where, index)


@attrs.define
class _Thawing:
    """Which phase first thaws each name, and what else happened while resolving the entries.

    A private accumulator, filled by one call of :func:`_thawing` and never seen outside this module.

    Attributes:
        owner: the phase that first thaws each name (a bare index: no allocation per parameter).
        by_phase: each phase's names when the entries were all distinct exact names (they are the entries).
        again: ``(name, phase, entry index)`` for each entry of a later phase that thaws a name once more.
        problems: what resolving the entries found (no-match, invalid regex, tied aliases...).
    """

    owner: dict[str, int] = attrs.field(factory=dict)
    again: list[tuple[str, int, int]] = attrs.field(factory=list)
    problems: list[Diagnostic] = attrs.field(factory=list)
    by_phase: list[tuple[str, ...]] | None = None  # each phase's names, when known without another pass


def _thawing(phases: Sequence[Phase], index: NameIndex, aliases: Mapping[str, str]) -> _Thawing:
    """Resolve every entry: through :func:`_exact_names` when it can, else entry by entry."""
    exact = _exact_names(phases, index)
    return exact if exact is not None else _entry_by_entry(phases, index, aliases)


def _exact_names(phases: Sequence[Phase], index: NameIndex) -> _Thawing | None:
    """The fast path for schedules of distinct exact names (generated ones): one dict, one subset test in C."""
    params = list(params_of(phases))
    sizes = list(map(len, params))
    # {entry: its phase}, built by C iterators: large generated schedules have one entry per parameter.
    phase_of_entry = chain.from_iterable(map(repeat, range(len(sizes)), sizes))
    owner = dict(zip(chain.from_iterable(params), phase_of_entry, strict=True))
    if len(owner) < sum(sizes) or not owner.keys() <= index.members:
        return None  # a name given twice, or an entry that is a regex, an alias or a mistake
    return _Thawing(owner, by_phase=params)


def _entry_by_entry(phases: Sequence[Phase], index: NameIndex, aliases: Mapping[str, str]) -> _Thawing:
    """Resolve entries one by one: O(1) per exact name, the slow path only for regexes and strangers."""
    found = _Thawing()
    members, owner, again = index.members, found.owner, found.again
    for p, phase in enumerate(phases):
        for i, entry in enumerate(phase.params):
            if entry not in members:
                _thaw_matches(match_entry(entry, Location(p, "params", i), index, aliases), p, i, found)
            elif owner.setdefault(entry, p) != p:
                again.append((entry, p, i))
    return found


def _thaw_matches(matched: _Matched, p: int, i: int, found: _Thawing) -> None:
    for name in matched.names:
        if found.owner.setdefault(name, p) != p:
            found.again.append((name, p, i))
    found.problems.extend(matched.problems)


def _first_entries(phase: Phase, index: NameIndex, aliases: Mapping[str, str]) -> dict[str, int]:
    """For each name ``phase`` thaws, the first of its entries that does (asked only of phases that overlap)."""
    first: dict[str, int] = {}
    for i, entry in enumerate(phase.params):
        for name in match_entry(entry, Location(), index, aliases).names:
            first.setdefault(name, i)
    return first


def _disjointness(
    phases: Sequence[Phase], found: _Thawing, index: NameIndex, aliases: Mapping[str, str]
) -> Diagnostics:
    """Each parameter may be thawed by one phase only; report overlaps once per pair of entries."""
    clashes: dict[tuple[Location, Location], list[str]] = {}
    reported: set[tuple[str, int]] = set()
    entries: dict[int, dict[str, int]] = {}  # the first entries of the phases that own a clashing name
    for name, p, i in found.again:
        if (name, p) not in reported:  # a later entry of the same phase repeats the same overlap
            reported.add((name, p))
            q = found.owner[name]
            first = entries.get(q) or entries.setdefault(q, _first_entries(phases[q], index, aliases))
            clashes.setdefault((Location(q, "params", first[name]), Location(p, "params", i)), []).append(name)
    return tuple(
        attrs.evolve(
            error("param-in-several-phases", f"{_preview(names)} also thawed by {first}", where, _ONE_PHASE),
            related=first,
        )
        for (first, where), names in clashes.items()
    )


def _by_phase(names: tuple[str, ...], found: _Thawing, count: int) -> tuple[list[tuple[str, ...]], tuple[str, ...]]:
    """Each phase's names in the order its entries list them (a regex's matches in registration order, as FTS
    expands them), and the names no phase thaws."""
    owner = found.owner
    unscheduled = () if len(owner) == len(names) else tuple(name for name in names if name not in owner)
    if found.by_phase is not None:
        return found.by_phase, unscheduled
    phases: list[list[str]] = [[] for _ in range(count)]
    for name, where in owner.items():  # insertion order: entry by entry
        phases[where].append(name)
    return [tuple(phase) for phase in phases], unscheduled


def _no_epoch_limits(phases: Sequence[Phase]) -> bool:
    return isinstance(phases, PlainPhases) or all(phase.max_transition_epoch == -1 for phase in phases)


def _check_epochs(phases: Sequence[Phase], options: ValidationOptions) -> Iterator[Diagnostic]:
    if not options.epoch_transitions_only and _no_epoch_limits(phases):
        return  # nothing to check: no phase has an epoch limit
    watermark = -1
    for p, phase in enumerate(phases):
        mte = phase.max_transition_epoch
        if mte < -1:
            where = Location(p, "max_transition_epoch")
            yield error("invalid-max-transition-epoch", f"must be -1 (no epoch limit) or >= 0, got {mte}", where)
        if options.epoch_transitions_only and mte < 0:
            hint = "give every phase a max_transition_epoch, or unset epoch_transitions_only"
            message = "epoch_transitions_only needs an epoch on every phase"
            yield error("missing-max-transition-epoch", message, Location(p), hint)
        if 0 <= mte <= watermark and p > 0:
            message = f"{mte} is not after an earlier phase's {watermark}: the phase may run a single epoch"
            yield warning("max-transition-epoch-not-increasing", message, Location(p, "max_transition_epoch"))
        watermark = mte if mte > watermark else watermark


def _check_lr(p: int, phase: Phase) -> Iterator[Diagnostic]:
    where = Location(p, "lr")
    if phase.lr is None:
        return
    if p == 0:
        yield warning(
            "lr-in-phase-0",
            "phase 0 uses the optimizer's learning rate; this lr is ignored",
            where,
            "set the learning rate in configure_optimizers",
        )
    elif not (math.isfinite(phase.lr) and phase.lr > 0):
        yield error("invalid-lr", f"lr must be a positive finite number, got {phase.lr}", where)


def _check_lr_scheduler(p: int, spec: LRSchedulerInit) -> Iterator[Diagnostic]:
    yield from pl_lrs_cfg_problems(spec, Location(p, "new_lr_scheduler", subpath=("pl_lrs_cfg",)))


def pl_lrs_cfg_problems(spec: LRSchedulerInit, where: Location) -> Diagnostics:
    """Problems of a scheduler block's Lightning settings: unknown keys, an interval other than epoch/step, values
    of the wrong type (used for schedule phases and for the implicit ``reinit_lr_cfg``).

    >>> from ._records import ClassInit
    >>> spec = LRSchedulerInit(ClassInit("torch.optim.lr_scheduler.StepLR"), pl_lrs_cfg={"interval": "stepp"})
    >>> [d.message for d in pl_lrs_cfg_problems(spec, Location())]
    ["interval must be 'epoch' or 'step', got 'stepp'"]
    """
    return tuple(_pl_lrs_cfg_problems(spec, where))


def _pl_lrs_cfg_problems(spec: LRSchedulerInit, where: Location) -> Iterator[Diagnostic]:
    unknown = sorted(set(spec.pl_lrs_cfg) - _PL_LRS_KEYS)
    if unknown:
        yield error("invalid-value", f"unknown pl_lrs_cfg key(s) {unknown}; known: {sorted(_PL_LRS_KEYS)}", where)
    interval = spec.pl_lrs_cfg.get("interval", "epoch")
    if interval not in ("epoch", "step"):
        yield error("invalid-value", f"interval must be 'epoch' or 'step', got {interval!r}", where)
    yield from _check_pl_lrs_values(spec.pl_lrs_cfg, where)


def _check_pl_lrs_values(cfg: Mapping[str, Any], where: Location) -> Iterator[Diagnostic]:
    """The values Lightning's scheduler config takes: a positive int frequency, strings, booleans."""
    frequency = cfg.get("frequency", 1)
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        yield error("invalid-value", f"frequency must be a positive integer, got {frequency!r}", where)
    for key in ("monitor", "name"):
        if cfg.get(key) is not None and not isinstance(cfg[key], str):
            yield error("invalid-value", f"{key} must be a string, got {cfg[key]!r}", where)
    for key in ("strict", "reduce_on_plateau"):
        if key in cfg and not isinstance(cfg[key], bool):
            yield error("invalid-value", f"{key} must be true or false, got {cfg[key]!r}", where)


def _check_reinit(p: int, phase: Phase, supported: bool) -> Iterator[Diagnostic]:
    for key in ("new_optimizer", "new_lr_scheduler"):
        if getattr(phase, key) is None:
            continue
        if not supported:
            yield error(
                "unsupported-reinit",
                f"{key} (reinitialising the {key.removeprefix('new_').replace('_', ' ')}) is not supported here yet",
                Location(p, key),
                "remove the block: phases then keep the optimizer and LR scheduler from configure_optimizers",
            )
        elif p == 0:
            yield error(
                "reinit-in-phase-0",
                f"{key} cannot be given for phase 0",
                Location(p, key),
                "phase 0 uses the optimizer and scheduler from configure_optimizers",
            )
    if phase.new_lr_scheduler is not None:
        yield from _check_lr_scheduler(p, phase.new_lr_scheduler)


def _all_plain(phases: Sequence[Phase]) -> bool:
    """Whether every phase has entries and nothing but entries (generated schedules): no field to check."""
    if isinstance(phases, PlainPhases):
        return all(phases.params)
    return all(
        phase.params and phase.lr is None and phase.new_optimizer is None and phase.new_lr_scheduler is None
        for phase in phases
    )


def _check_phase_fields(phases: Sequence[Phase], reinit_supported: bool) -> Iterator[Diagnostic]:
    if _all_plain(phases):
        return
    for p, phase in enumerate(phases):
        if not phase.params:
            yield error(
                "empty-phase",
                "this phase thaws no parameters",
                Location(p, "params"),
                "list parameter names or regexes under `params`, or remove the phase",
            )
        if phase.lr is not None:
            yield from _check_lr(p, phase)
        if phase.new_optimizer is not None or phase.new_lr_scheduler is not None:
            yield from _check_reinit(p, phase, reinit_supported)


def _check_options(options: ValidationOptions, phase_count: int) -> Iterator[Diagnostic]:
    if not (math.isfinite(options.base_max_lr) and options.base_max_lr > 0):
        yield error("invalid-option", f"base_max_lr must be a positive finite number, got {options.base_max_lr}")
    if options.max_depth < -1:
        yield error("invalid-option", f"max_depth must be -1 (whole schedule) or >= 0, got {options.max_depth}")
    if phase_count == 0:
        yield error("schedule-empty", "the schedule has no phases")


def _unscheduled(left: tuple[str, ...], policy: UnscheduledPolicy) -> Diagnostics:
    if not left or policy is UnscheduledPolicy.IGNORE:
        return ()
    message = f"{len(left)} parameter(s) are never thawed by any phase: {_preview(left)}"
    hint = "add them to a phase (a final phase with '.*' catches the rest), or accept that they stay frozen"
    make = error if policy is UnscheduledPolicy.ERROR else warning
    return (make("unscheduled-params", message, Location(), hint),)


def _phase_lrs(phases: Sequence[Phase], options: ValidationOptions) -> list[float | None]:
    # Phase 0 trains with the optimizer's own learning rate; later phases default to base_max_lr.
    base = options.base_max_lr
    if isinstance(phases, PlainPhases):
        return [None] + [base] * (len(phases) - 1) if phases else []
    return [None if p == 0 else base if phase.lr is None else phase.lr for p, phase in enumerate(phases)]


def _resolve(
    schedule: Schedule, names: list[tuple[str, ...]], options: ValidationOptions, unscheduled: tuple[str, ...]
) -> ResolvedSchedule:
    written = schedule.phases
    last = len(written) - 1
    max_depth = last if options.max_depth == -1 else min(options.max_depth, last)
    epochs = [-1] * len(written) if isinstance(written, PlainPhases) else [p.max_transition_epoch for p in written]
    phases = ResolvedPhases(names, epochs, _phase_lrs(written, options), written)
    return ResolvedSchedule(phases, max_depth, max(epochs, default=-1), unscheduled, (), schedule)


def diagnose(
    schedule: Schedule, inventory: ParamInventory, options: ValidationOptions
) -> ResolvedSchedule | Diagnostics:
    """Run every check; the resolved schedule (warnings attached) if nothing is an error, else all diagnostics.

    Linear in the number of parameters and entries: exact names cost a set lookup, and regexes search only the
    names that share their literal prefix.
    """
    index = NameIndex.build(inventory.names)
    found = _thawing(schedule.phases, index, inventory.aliases)
    names, unscheduled = _by_phase(inventory.names, found, len(schedule.phases))
    problems: list[Diagnostic] = [*found.problems, *_disjointness(schedule.phases, found, index, inventory.aliases)]
    problems += _check_phase_fields(schedule.phases, options.reinit_supported)
    problems += _check_epochs(schedule.phases, options)
    problems += _check_options(options, len(schedule.phases))
    problems += _unscheduled(unscheduled, options.unscheduled)
    diagnostics = locate(tuple(sorted(problems, key=_reading_order)), schedule.source)
    if errors_only(diagnostics):
        return diagnostics
    return attrs.evolve(_resolve(schedule, names, options, unscheduled), warnings=diagnostics)


def validate(
    schedule: Schedule, inventory: ParamInventory, options: ValidationOptions = ValidationOptions()
) -> Result[ResolvedSchedule, Diagnostics]:
    """Check a schedule against a model's parameters and resolve every entry to concrete names.

    Returns the resolved schedule with its warnings, or every diagnostic (errors and warnings) at once.

    >>> from ._records import Phase
    >>> inventory = ParamInventory.from_names(["body.weight", "head.weight", "head.bias"])
    >>> good = Schedule((Phase(("head.*",)), Phase(("body.weight",), lr=1e-4)))
    >>> validate(good, inventory).unwrap().phases[0].names
    ('head.weight', 'head.bias')
    >>> bad = Schedule((Phase(("head.*",)), Phase(("head.bias", "neck.*"), lr=-1.0)))
    >>> [d.code for d in validate(bad, inventory).failure()]
    ['param-in-several-phases', 'no-match', 'invalid-lr', 'unscheduled-params']
    """
    outcome = diagnose(schedule, inventory, options)
    return Success(outcome) if isinstance(outcome, ResolvedSchedule) else Failure(outcome)


def _reading_order(diagnostic: Diagnostic) -> tuple[int, int, int]:
    """Sort diagnostics as a reader meets them: by phase, key order, entry; schedule-wide ones last."""
    where = diagnostic.location
    keys = ("params", "max_transition_epoch", "lr", "new_optimizer", "new_lr_scheduler")
    key_rank = keys.index(where.key) if where.key in keys else -1
    return (1 << 30 if where.phase is None else where.phase, key_rank, where.index or 0)
