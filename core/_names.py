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

from ._diagnostics import Diagnostics, error

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


def _rename_tables(bindings: tuple[Binding, ...]) -> Mapping[Direction, Mapping[str, str]]:
    pairs = [(b.canonical, b.view) for b in bindings if b.kind in RENAMES and b.canonical is not None]
    return types.MappingProxyType(
        {Direction.TO_VIEW: dict(pairs), Direction.TO_CANONICAL: {view: canonical for canonical, view in pairs}}
    )


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
    renames: Mapping[Direction, Mapping[str, str]] = attrs.field(
        init=False, eq=False, repr=False, default=attrs.Factory(lambda self: _rename_tables(self.bindings), True)
    )
    """Checkpoint-key renames each way: only ``exact`` and ``prefix`` bindings (the same tensor under another name)."""

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
