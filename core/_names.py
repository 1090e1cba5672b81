"""Parameter names in two spaces: the schedule's (an adapter's view) and the module's own (canonical) names.

A :class:`NameMap` binds each schedule-space name to the canonical parameter it stands for. Schedules are expanded
(regexes matched) in schedule space, then translated to canonical names for thawing and back for logs; checkpoint
keys are renamed only where a name is a pure rename of the same tensor.

Binding kinds:

- ``exact``: the schedule name is the canonical name.
- ``prefix``: the canonical name with wrapper components removed (``_orig_mod.``, ``module.``, ...): same tensor,
  same layout, so a checkpoint key can be renamed too.
- ``alias``: another name for one whole canonical tensor, possibly in another layout (TransformerLens ``W_O``).
- ``fused``: one slice of a tensor that holds several named parts (``W_Q``/``W_K``/``W_V`` of GPT-2's ``c_attn``).
  ``requires_grad`` is per tensor, so a phase must name every part, or the adapter must widen it to the whole tensor.
- ``tied``: a second name of a tensor that another binding already names (``W_U`` tied to ``W_E``).
- ``synthetic``: a name with no backing parameter (GPT-2's ``unembed.b_U``): it cannot be thawed.

``exact``, ``prefix`` and ``alias`` are one-to-one, so translation is a bijection on them; ``tied`` and ``fused`` map
many schedule names to one tensor, and translating back gives every name of the group.
"""

from __future__ import annotations

import collections
import enum
import types
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostic, Diagnostics, Location, error, errors_only, warning
from ._generate import GenerationPolicy, generate
from ._pipeline import resolve_schedule
from ._records import ParamInventory, ResolvedSchedule, Schedule, UnscheduledPolicy, ValidationOptions
from ._structure import as_raw, locate, structure_leniently
from ._validate import validate
from ._yaml import RawSchedule

WRAPPER_COMPONENTS: tuple[str, ...] = ("_orig_mod", "_checkpoint_wrapped_module", "_fsdp_wrapped_module")
"""Path components that wrappers insert anywhere in a name (torch.compile, activation checkpointing, FSDP)."""

LEADING_WRAPPERS: tuple[str, ...] = ("module",)
"""Path components that wrappers insert only at the front of a name (DDP, DataParallel)."""


class BindingKind(enum.Enum):
    """How a schedule-space name relates to the canonical parameter behind it (see the module docstring)."""

    EXACT = "exact"
    PREFIX = "prefix"
    ALIAS = "alias"
    FUSED = "fused"
    TIED = "tied"
    SYNTHETIC = "synthetic"


ONE_TO_ONE = frozenset({BindingKind.EXACT, BindingKind.PREFIX, BindingKind.ALIAS})
"""Kinds on which translation is a bijection."""

RENAMES = frozenset({BindingKind.EXACT, BindingKind.PREFIX})
"""Kinds whose checkpoint keys may be renamed (same tensor, same layout)."""


class FusedPolicy(enum.Enum):
    """What to do when a phase names only some parts of a fused tensor."""

    ERROR = "error"
    WIDEN = "widen"


class Direction(enum.Enum):
    """Which way to rename checkpoint keys."""

    TO_VIEW = "to_view"
    TO_CANONICAL = "to_canonical"


def _check_backing(binding: Binding, _: attrs.Attribute[Any], canonical: str | None) -> None:
    # A malformed binding is a programming error in an adapter, not a user error: fail at construction.
    if (canonical is None) != (binding.kind is BindingKind.SYNTHETIC):
        raise ValueError(f"{binding.kind.value} binding {binding.view!r} needs canonical=None iff it is synthetic")


@attrs.frozen
class Binding:
    """One schedule-space name and the canonical parameter behind it.

    Attributes:
        view: the schedule-space name (``blocks.3.attn.W_Q``).
        canonical: the canonical parameter name (``transformer.h.3.attn.c_attn.weight``); ``None`` if synthetic.
        kind: how the two relate.
    """

    view: str
    kind: BindingKind = attrs.field(kw_only=True, default=BindingKind.EXACT)
    canonical: str | None = attrs.field(kw_only=True, validator=_check_backing)

    @classmethod
    def of(cls, view: str, canonical: str | None, kind: BindingKind) -> Binding:
        """Build a binding positionally.

        >>> Binding.of("embed.W_E", "transformer.wte.weight", BindingKind.ALIAS).canonical
        'transformer.wte.weight'
        """
        return cls(view, kind=kind, canonical=canonical)


def _views_by_canonical(bindings: tuple[Binding, ...]) -> Mapping[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for binding in bindings:
        if binding.canonical is not None:
            groups.setdefault(binding.canonical, []).append(binding.view)
    return types.MappingProxyType({canonical: tuple(views) for canonical, views in groups.items()})


@attrs.frozen
class NameMap:
    """A checked mapping between schedule-space names and canonical names; build it with :func:`build_name_map`.

    Attributes:
        bindings: one binding per schedule-space name, in schedule-space order.
        hidden: canonical names deliberately left out of schedule space (never thawed by a schedule).
    """

    bindings: tuple[Binding, ...]
    hidden: tuple[str, ...] = ()
    by_view: Mapping[str, Binding] = attrs.field(
        init=False, eq=False, repr=False, default=attrs.Factory(lambda self: {b.view: b for b in self.bindings}, True)
    )
    by_canonical: Mapping[str, tuple[str, ...]] = attrs.field(
        init=False, eq=False, repr=False, default=attrs.Factory(lambda self: _views_by_canonical(self.bindings), True)
    )

    @property
    def views(self) -> tuple[str, ...]:
        """The schedule-space names that stand for a parameter (synthetic names excluded), in order.

        >>> identity_map(["a.weight", "a.bias"]).views
        ('a.weight', 'a.bias')
        """
        return tuple(b.view for b in self.bindings if b.canonical is not None)

    @property
    def is_identity(self) -> bool:
        """Whether every schedule-space name is its canonical name.

        >>> identity_map(["a"]).is_identity
        True
        """
        return all(b.kind is BindingKind.EXACT for b in self.bindings)

    def siblings(self, canonical: str) -> tuple[str, ...]:
        """Every schedule-space name bound to ``canonical`` (the parts of a fused tensor, the names of a tie).

        >>> identity_map(["a"]).siblings("a")
        ('a',)
        """
        return self.by_canonical.get(canonical, ())


def identity_map(names: Iterable[str]) -> NameMap:
    """The map in which every canonical name stands for itself.

    >>> identity_map(["w"]).bindings
    (Binding(view='w', kind=<BindingKind.EXACT: 'exact'>, canonical='w'),)
    """
    return NameMap(tuple(Binding(name, canonical=name) for name in names))


# -- building -------------------------------------------------------------------------------------------------------


def _duplicate_views(bindings: tuple[Binding, ...]) -> Diagnostics:
    counts = collections.Counter(b.view for b in bindings)
    return tuple(
        error("name-map-duplicate", f"schedule name {view!r} is bound twice") for view, n in counts.items() if n > 1
    )


def _unknown_canonical(bindings: tuple[Binding, ...], hidden: tuple[str, ...], known: frozenset[str]) -> Diagnostics:
    named = [(b.view, b.canonical) for b in bindings if b.canonical is not None] + [(None, name) for name in hidden]
    return tuple(
        error("name-map-unknown-param", f"{view or 'hidden name'} -> {canonical!r}: the model has no such parameter")
        for view, canonical in named
        if canonical not in known
    )


def _group_problem(canonical: str, kinds: list[BindingKind]) -> Diagnostics:
    fused = kinds.count(BindingKind.FUSED)
    if fused and fused != len(kinds):
        return (error("name-map-mixed", f"{canonical!r} is bound both as fused parts and as a whole"),)
    if not fused and len(kinds) - kinds.count(BindingKind.TIED) > 1:
        message = f"{canonical!r} has several one-to-one names; mark all but one as tied"
        return (error("name-map-not-injective", message),)
    return ()


def _group_problems(bindings: tuple[Binding, ...], hidden: tuple[str, ...]) -> Diagnostics:
    kinds: dict[str, list[BindingKind]] = {}
    for binding in bindings:
        if binding.canonical is not None:
            kinds.setdefault(binding.canonical, []).append(binding.kind)
    bound_hidden = tuple(
        error("name-map-hidden-bound", f"{name!r} is both hidden and bound") for name in hidden if name in kinds
    )
    return tuple(d for canonical, group in kinds.items() for d in _group_problem(canonical, group)) + bound_hidden


def _passthrough(
    bindings: tuple[Binding, ...], hidden: tuple[str, ...], canonical: Iterable[str]
) -> tuple[Binding, ...]:
    covered = {b.canonical for b in bindings} | set(hidden)
    return tuple(Binding(name, canonical=name) for name in canonical if name not in covered)


def build_name_map(
    canonical: Iterable[str], bindings: Iterable[Binding], hidden: Iterable[str] = (), passthrough: bool = True
) -> Result[NameMap, Diagnostics]:
    """Check bindings against the model's canonical names and complete them into a :class:`NameMap`.

    With ``passthrough``, canonical names that no binding names and that are not ``hidden`` stand for themselves
    (appended after the bindings, in model order): a classifier head keeps its own name beside a view's names.

    >>> names = ["gpt.c_attn.weight", "head.weight"]
    >>> parts = [Binding.of(v, "gpt.c_attn.weight", BindingKind.FUSED) for v in ("W_Q", "W_K", "W_V")]
    >>> build_name_map(names, parts).unwrap().views
    ('W_Q', 'W_K', 'W_V', 'head.weight')
    >>> [d.code for d in build_name_map(names, [Binding("x", canonical="nope")]).failure()]
    ['name-map-unknown-param']
    """
    names, given, hide = tuple(canonical), tuple(bindings), tuple(hidden)
    complete = given + (_passthrough(given, hide, names) if passthrough else ())
    problems = _unknown_canonical(given, hide, frozenset(names)) + _group_problems(given, hide)
    problems += _duplicate_views(complete)
    return Failure(problems) if problems else Success(NameMap(complete, hide))


def strip_wrappers(
    name: str, anywhere: tuple[str, ...] = WRAPPER_COMPONENTS, leading: tuple[str, ...] = LEADING_WRAPPERS
) -> str:
    """A name without the path components that wrappers insert.

    >>> strip_wrappers("module.net._orig_mod.layers.0._checkpoint_wrapped_module.mlp.weight")
    'net.layers.0.mlp.weight'
    >>> strip_wrappers("net.module.weight")  # `module` is a wrapper only at the front
    'net.module.weight'
    """
    parts = name.split(".")
    start = 0
    while start < len(parts) - 1 and parts[start] in leading + anywhere:
        start += 1
    kept = [part for part in parts[start:-1] if part not in anywhere]
    return ".".join([*kept, parts[-1]])


def unwrapped_name_map(
    names: Iterable[str], anywhere: tuple[str, ...] = WRAPPER_COMPONENTS, leading: tuple[str, ...] = LEADING_WRAPPERS
) -> Result[NameMap, Diagnostics]:
    """A map whose schedule names are the canonical names without wrapper components (one schedule fits a model
    whether or not it is compiled or wrapped).

    >>> nm = unwrapped_name_map(["model._orig_mod.head.weight", "model._orig_mod.head.bias"]).unwrap()
    >>> nm.views, nm.bindings[0].kind.value
    (('model.head.weight', 'model.head.bias'), 'prefix')
    >>> unwrapped_name_map(["a._orig_mod.w", "a.w"]).failure()[0].code
    'name-map-duplicate'
    """
    bindings = []
    for name in names:
        view = strip_wrappers(name, anywhere, leading)
        bindings.append(Binding(view, kind=BindingKind.EXACT if view == name else BindingKind.PREFIX, canonical=name))
    return build_name_map((b.canonical or "" for b in bindings), bindings, passthrough=False)


# -- translating names ----------------------------------------------------------------------------------------------


def _unknown_views(names: tuple[str, ...], name_map: NameMap) -> Diagnostics:
    return tuple(
        error("name-unknown", f"{name!r} is not a schedule-space name of this model")
        for name in names
        if name not in name_map.by_view
    )


def _synthetic_names(names: tuple[str, ...], name_map: NameMap) -> Diagnostics:
    return tuple(
        error("name-synthetic", f"{name!r} has no backing parameter (it is synthetic), so it cannot be thawed")
        for name in names
        if name in name_map.by_view and name_map.by_view[name].canonical is None
    )


def _fused_parts(
    requested: set[str], canonical: str, name_map: NameMap, where: Location, policy: FusedPolicy
) -> Diagnostics:
    parts = name_map.siblings(canonical)
    if name_map.by_view[parts[0]].kind is not BindingKind.FUSED:
        return ()
    named, missing = [p for p in parts if p in requested], [p for p in parts if p not in requested]
    if not missing:
        return ()
    if policy is FusedPolicy.WIDEN:
        message = (
            f"{', '.join(named)} widened to the whole fused parameter {canonical!r}: {', '.join(missing)} thaw too"
        )
        return (warning("fused-widened", message, where),)
    message = (
        f"{', '.join(named)} name only part of the fused parameter {canonical!r}, which also holds "
        f"{', '.join(missing)}; a parameter is thawed whole, so {', '.join(missing)} would train too"
    )
    hint = f"thaw {', '.join(parts)} in one phase, or give the adapter fused='widen' to thaw the whole tensor"
    return (error("fused-partial", message, where, hint),)


def _canonical_of(names: tuple[str, ...], name_map: NameMap) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for n in names if (c := name_map.by_view[n].canonical) is not None))


def to_canonical(
    names: Iterable[str], name_map: NameMap, fused: FusedPolicy = FusedPolicy.ERROR, where: Location = Location()
) -> Result[tuple[str, ...], Diagnostics]:
    """Translate the schedule-space names of one phase to the canonical parameters to thaw (each once).

    >>> parts = [Binding.of(v, "c_attn.weight", BindingKind.FUSED) for v in ("W_Q", "W_K", "W_V")]
    >>> nm = build_name_map(["c_attn.weight"], parts).unwrap()
    >>> to_canonical(["W_Q", "W_K", "W_V"], nm).unwrap()
    ('c_attn.weight',)
    >>> to_canonical(["W_Q"], nm).failure()[0].code
    'fused-partial'
    >>> to_canonical(["W_Q"], nm, FusedPolicy.WIDEN).unwrap()
    ('c_attn.weight',)
    """
    given = tuple(names)
    problems = _unknown_views(given, name_map) + _synthetic_names(given, name_map)
    if problems:
        return Failure(problems)
    canonical = _canonical_of(given, name_map)
    problems = tuple(d for c in canonical for d in _fused_parts(set(given), c, name_map, where, fused))
    return Failure(problems) if errors_only(problems) else Success(canonical)


def to_view(names: Iterable[str], name_map: NameMap) -> tuple[str, ...]:
    """Translate canonical names back to schedule space, for logs: every name bound to each, else the name itself.

    >>> nm = build_name_map(["wte.weight"], [Binding.of("embed.W_E", "wte.weight", BindingKind.ALIAS),
    ...                                      Binding.of("unembed.W_U", "wte.weight", BindingKind.TIED)]).unwrap()
    >>> to_view(["wte.weight", "not.mapped"], nm)
    ('embed.W_E', 'unembed.W_U', 'not.mapped')
    """
    return tuple(dict.fromkeys(view for name in names for view in (name_map.siblings(name) or (name,))))


# -- translating schedules ------------------------------------------------------------------------------------------


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


# -- translating checkpoint keys ------------------------------------------------------------------------------------


def _rename(key: str, name_map: NameMap, direction: Direction, view_of: Mapping[str, str]) -> str:
    if direction is Direction.TO_VIEW:
        return view_of.get(key, key)
    binding = name_map.by_view.get(key)
    return binding.canonical or key if binding is not None and binding.kind in RENAMES else key


def rename_keys(keys: Iterable[str], name_map: NameMap, direction: Direction) -> Result[Mapping[str, str], Diagnostics]:
    """Rename checkpoint (state-dict) keys between the spaces: a mapping old key -> new key, in order.

    Only ``exact`` and ``prefix`` bindings rename a key (the same tensor in the same layout); every other key, buffers
    included, is kept. Two keys landing on one name are an error. No tensor is touched: apply the mapping to a state
    dict in the shell.

    >>> nm = unwrapped_name_map(["_orig_mod.w", "_orig_mod.b"]).unwrap()
    >>> dict(rename_keys(["_orig_mod.w", "_orig_mod.b", "step"], nm, Direction.TO_VIEW).unwrap())
    {'_orig_mod.w': 'w', '_orig_mod.b': 'b', 'step': 'step'}
    >>> dict(rename_keys(["w"], nm, Direction.TO_CANONICAL).unwrap())
    {'w': '_orig_mod.w'}
    """
    view_of = {b.canonical: b.view for b in name_map.bindings if b.kind in RENAMES and b.canonical is not None}
    renamed = {key: _rename(key, name_map, direction, view_of) for key in keys}
    targets: dict[str, list[str]] = {}
    for old, new in renamed.items():
        targets.setdefault(new, []).append(old)
    problems = tuple(
        error("state-dict-key-collision", f"checkpoint keys {olds} would all be renamed to {new!r}")
        for new, olds in targets.items()
        if len(olds) > 1
    )
    return Failure(problems) if problems else Success(types.MappingProxyType(renamed))
