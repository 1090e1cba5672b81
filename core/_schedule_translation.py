"""Translating whole schedules between the two spaces of a :class:`NameMap`: a schedule is validated (regexes
matched) in schedule space, then translated to canonical names, where split tied or fused tensors and parameters
that no phase thaws are checked; default schedules are generated in schedule space without splitting a tensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostic, Diagnostics, Location, error, errors_only, warning
from ._generate import GenerationPolicy, generate
from ._name_translation import _fused_parts, to_view
from ._names import (
    Binding,  # noqa: F401 (used by the doctests)
    BindingKind,
    FusedPolicy,
    NameMap,
    build_name_map,  # noqa: F401 (used by the doctests)
    unwrapped_name_map,  # noqa: F401 (used by the doctests)
)
from ._pipeline import resolve_schedule
from ._records import ParamInventory, ResolvedSchedule, Schedule, UnscheduledPolicy, ValidationOptions
from ._structure import as_raw, locate, structure_leniently
from ._validate import validate
from ._yaml import RawSchedule


@attrs.frozen
class TranslatedSchedule:
    """A schedule resolved in schedule space and translated to canonical names.

    Attributes:
        view: the schedule with concrete schedule-space names (what the user wrote, expanded; for logs and files).
        canonical: the same phases with canonical names (what is thawed and put in optimizer groups).
    """

    view: ResolvedSchedule
    canonical: ResolvedSchedule


def view_inventory(inventory: ParamInventory, name_map: NameMap) -> ParamInventory:
    """The model's parameters as schedule space sees them (synthetic names left out: they cannot be thawed).

    Sizes, dtypes and modules come from the canonical parameter; the parts of a fused tensor share its size.

    >>> nm = build_name_map(["c.weight"], [Binding.of(v, "c.weight", BindingKind.FUSED) for v in "QKV"]).unwrap()
    >>> inv = view_inventory(ParamInventory(("c.weight",), (12,), ((2, 6),), ("float32",), ("c",)), nm)
    >>> inv.names, inv.numels
    (('Q', 'K', 'V'), (4, 4, 4))
    """
    row = {name: i for i, name in enumerate(inventory.names)}
    bound = [(view, row[name_map.by_view[view].canonical or ""]) for view in name_map.views]

    def column(values: tuple[Any, ...], default: Any) -> tuple[Any, ...]:
        return tuple(values[i] if i < len(values) else default for _, i in bound)

    share = [_parts(view, name_map) for view, _ in bound]
    numels = tuple(n // k for n, k in zip(column(inventory.numels, 1), share, strict=True))
    modules = tuple(view.rpartition(".")[0] for view, _ in bound)
    # A tied alias the model registers once (``lm_head.weight``) may still be written; it points at a schedule name.
    aliases = {
        alias: name_map.siblings(target)[0]
        for alias, target in inventory.aliases.items()
        if name_map.siblings(target) and alias not in name_map.by_view
    }
    views = tuple(view for view, _ in bound)
    return ParamInventory(views, numels, column(inventory.shapes, ()), column(inventory.dtypes, ""), modules, aliases)


def _parts(view: str, name_map: NameMap) -> int:
    binding = name_map.by_view[view]
    return len(name_map.siblings(binding.canonical or "")) if binding.kind is BindingKind.FUSED else 1


def _requests(resolved: ResolvedSchedule, name_map: NameMap) -> dict[str, dict[int, list[str]]]:
    """canonical name -> phase -> the schedule names of that phase bound to it."""
    found: dict[str, dict[int, list[str]]] = {}
    for p, phase in enumerate(resolved.phases):
        for view in phase.names:
            canonical = name_map.by_view[view].canonical
            if canonical is not None:
                found.setdefault(canonical, {}).setdefault(p, []).append(view)
    return found


def _split(canonical: str, by_phase: dict[int, list[str]], name_map: NameMap) -> Diagnostics:
    first, *later = sorted(by_phase)
    what = (
        "parts of the fused parameter" if name_map.by_view[by_phase[first][0]].kind is BindingKind.FUSED else "names of"
    )
    return tuple(
        error(
            "param-in-several-phases",
            f"{', '.join(by_phase[p])} and {', '.join(by_phase[first])} (phase {first}) are {what} {canonical!r}, "
            "which can be thawed in one phase only",
            Location(p, "params"),
            f"thaw all of {', '.join(name_map.siblings(canonical))} in one phase",
        )
        for p in later
    )


def _canonical_checks(requests: dict[str, dict[int, list[str]]], name_map: NameMap, fused: FusedPolicy) -> Diagnostics:
    problems: list[Diagnostic] = []
    for canonical, by_phase in requests.items():
        if len(by_phase) > 1:
            problems += _split(canonical, by_phase, name_map)
            continue
        ((p, views),) = by_phase.items()
        problems += _fused_parts(set(views), canonical, name_map, Location(p, "params"), fused)
    return tuple(problems)


def _phase_names(
    resolved: ResolvedSchedule, requests: dict[str, dict[int, list[str]]], key: Mapping[str, int]
) -> list[list[str]]:
    names: list[list[str]] = [[] for _ in resolved.phases]
    for canonical, by_phase in requests.items():
        names[min(by_phase)].append(canonical)
    return [sorted(found, key=key.__getitem__) for found in names]


def _unscheduled(left: tuple[str, ...], policy: UnscheduledPolicy) -> Diagnostics:
    if not left or policy is UnscheduledPolicy.IGNORE:
        return ()
    shown = ", ".join(left[:5]) + (f", … ({len(left)} in all)" if len(left) > 5 else "")
    message = f"{len(left)} parameter(s) are never thawed by any phase: {shown}"
    hint = "add them to a phase (a final phase with '.*' catches the rest), or accept that they stay frozen"
    return ((error if policy is UnscheduledPolicy.ERROR else warning)("unscheduled-params", message, Location(), hint),)


def _both_spaces(
    resolved: ResolvedSchedule, canonical: list[list[str]], inventory: ParamInventory, name_map: NameMap
) -> TranslatedSchedule:
    scheduled = {name for phase in canonical for name in phase}
    left = tuple(name for name in inventory.names if name not in scheduled and name not in name_map.hidden)
    as_canonical = attrs.evolve(
        resolved,
        phases=tuple(attrs.evolve(p, names=tuple(n)) for p, n in zip(resolved.phases, canonical, strict=True)),
        unscheduled=left,
    )
    # A widened fused tensor thaws every part: the schedule-space phase lists them all, as logs will.
    as_view = attrs.evolve(
        resolved,
        phases=tuple(
            attrs.evolve(p, names=to_view(n, name_map)) for p, n in zip(resolved.phases, canonical, strict=True)
        ),
        unscheduled=to_view(left, name_map),
    )
    return TranslatedSchedule(as_view, as_canonical)


def translate_schedule(
    resolved: ResolvedSchedule,
    inventory: ParamInventory,
    name_map: NameMap,
    fused: FusedPolicy = FusedPolicy.ERROR,
    unscheduled: UnscheduledPolicy = UnscheduledPolicy.IGNORE,
) -> Result[TranslatedSchedule, Diagnostics]:
    """Translate a schedule resolved in schedule space to canonical names, checking what only canonical space shows.

    Two schedule names of one tensor (tied names, fused parts) in different phases are an error: the tensor can be
    thawed once. A phase naming part of a fused tensor is an error (``fused=ERROR``) or is widened to the whole
    tensor with a warning (``fused=WIDEN``). Parameters no phase thaws are reported here, in canonical space (hidden
    names excepted), so validate the schedule-space schedule with ``UnscheduledPolicy.IGNORE``.

    Args:
        resolved: the schedule validated against :func:`view_inventory` (concrete schedule-space names).
        inventory: the model's canonical parameters (for order and the unscheduled list).
        name_map: the map between the two spaces.
        fused: the policy for partly named fused tensors.
        unscheduled: what to do with parameters that no phase thaws.

    >>> from ._records import Phase
    >>> nm = build_name_map(["wte", "head"], [Binding.of("W_E", "wte", BindingKind.ALIAS),
    ...                                       Binding.of("W_U", "wte", BindingKind.TIED)]).unwrap()
    >>> inventory = ParamInventory.from_names(["wte", "head"])
    >>> view = validate(Schedule((Phase(("head", "W_U")), Phase(("W_E",)))), view_inventory(inventory, nm)).unwrap()
    >>> print(translate_schedule(view, inventory, nm).failure()[0].message)
    W_E and W_U (phase 0) are names of 'wte', which can be thawed in one phase only
    """
    requests = _requests(resolved, name_map)
    order = {name: i for i, name in enumerate(inventory.names)}
    translated = _both_spaces(resolved, _phase_names(resolved, requests, order), inventory, name_map)
    checks = _canonical_checks(requests, name_map, fused) + _unscheduled(translated.view.unscheduled, unscheduled)
    problems = locate(checks, resolved.schedule.source)
    if errors_only(problems):
        return Failure(problems)
    warnings = resolved.warnings + problems
    return Success(
        TranslatedSchedule(
            attrs.evolve(translated.view, warnings=warnings), attrs.evolve(translated.canonical, warnings=warnings)
        )
    )


def _explain_synthetic(diagnostics: Diagnostics, schedule: Schedule, name_map: NameMap) -> Diagnostics:
    """Say why naming a synthetic name fails, instead of the validator's plain "matched nothing"."""

    def explain(d: Diagnostic) -> Diagnostic:
        where = d.location
        if d.code != "no-match" or where.phase is None or where.index is None or where.phase >= len(schedule.phases):
            return d
        entry = schedule.phases[where.phase].params[where.index]
        if entry not in name_map.by_view or name_map.by_view[entry].canonical is not None:
            return d
        message = f"{entry!r} has no backing parameter in this model (it is synthetic), so it cannot be thawed"
        return attrs.evolve(d, code="name-synthetic", message=message, hint="remove it from the schedule")

    return tuple(explain(d) for d in diagnostics)


def resolve_in_view(
    schedule: Schedule | RawSchedule | Mapping[Any, Any],
    inventory: ParamInventory,
    name_map: NameMap,
    options: ValidationOptions = ValidationOptions(),
    fused: FusedPolicy = FusedPolicy.ERROR,
) -> Result[TranslatedSchedule, Diagnostics]:
    """Validate a schedule written in schedule-space names and translate it to canonical names.

    Schedule-space problems (no match, overlap, bad values) come first, all at once; canonical-space problems
    (split fused or tied tensors, parameters never thawed) are checked once those are fixed.

    >>> from ._records import Phase
    >>> nm = unwrapped_name_map(["_orig_mod.body.weight", "_orig_mod.head.weight"]).unwrap()
    >>> inventory = ParamInventory.from_names(["_orig_mod.body.weight", "_orig_mod.head.weight"])
    >>> out = resolve_in_view({0: {"params": ["head.*"]}, 1: {"params": ["body.weight"]}}, inventory, nm).unwrap()
    >>> out.view.phases[0].names, out.canonical.phases[0].names
    (('head.weight',), ('_orig_mod.head.weight',))
    """
    structured = schedule if isinstance(schedule, Schedule) else structure_leniently(as_raw(schedule))[0]
    views = view_inventory(inventory, name_map)
    in_view = attrs.evolve(options, unscheduled=UnscheduledPolicy.IGNORE)  # judged in canonical space instead
    if isinstance(schedule, Schedule):
        outcome = validate(schedule, views, in_view)
    else:
        outcome = resolve_schedule(schedule, views, in_view)
    explained = outcome.alt(lambda found: _explain_synthetic(found, structured, name_map))
    return explained.bind(lambda view: translate_schedule(view, inventory, name_map, fused, options.unscheduled))


def _tensor_groups(name_map: NameMap) -> list[tuple[str, ...]]:
    """Schedule names grouped by tensor (fused parts, tied names), each group placed at its last member."""
    groups: dict[str, list[str]] = {}
    last: dict[str, int] = {}
    for i, view in enumerate(name_map.views):
        canonical = name_map.by_view[view].canonical or view
        groups.setdefault(canonical, []).append(view)
        last[canonical] = i
    return [tuple(groups[canonical]) for canonical in sorted(groups, key=last.__getitem__)]


def generate_in_view(name_map: NameMap, policy: GenerationPolicy = GenerationPolicy.FTS) -> Schedule:
    """A default schedule in schedule-space names that never splits a tensor: the names of one tensor (fused parts,
    tied names) count as one unit and land in one phase.

    >>> parts = [Binding.of(v, "c_attn", BindingKind.FUSED) for v in ("W_Q", "W_K", "W_V")]
    >>> nm = build_name_map(["emb", "c_attn", "ln"], parts).unwrap()
    >>> [phase.params for phase in generate_in_view(nm).phases]
    [('ln', 'emb'), ('W_Q', 'W_K', 'W_V')]
    """
    units = {group[-1]: group for group in _tensor_groups(name_map)}
    schedule = generate(ParamInventory.from_names(tuple(units)), policy)
    phases = tuple(
        attrs.evolve(phase, params=tuple(view for unit in phase.params for view in units[unit]))
        for phase in schedule.phases
    )
    return attrs.evolve(schedule, phases=phases)
