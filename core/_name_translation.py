"""Translating the names of one phase between the two spaces of a :class:`NameMap`: schedule-space names to the
canonical parameters to thaw (checking fused parts and synthetic names), canonical names back to schedule space.
"""

from __future__ import annotations

from collections.abc import Iterable

from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostics, Location, error, errors_only, warning
from ._names import (
    Binding,  # noqa: F401 (used by the doctests)
    BindingKind,
    FusedPolicy,
    NameMap,
    build_name_map,  # noqa: F401 (used by the doctests)
)


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
