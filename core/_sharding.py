"""Sharding decisions as data: which modules an ``fsdp_plan`` shards, and which schedules a sharding cannot train.

FSDP groups parameters into units (FSDP1 flattens each unit's parameters into one ``FlatParameter``; FSDP2 shards
them per ``fully_shard`` call). Two facts follow that a schedule must respect, and that are checked here before any
process group exists:

- with FSDP1 and ``use_orig_params=False``, ``requires_grad`` is per flat parameter, so all the parameters of one
  unit must thaw in the same phase (unscheduled parameters count as a phase of their own: they never thaw);
- a tied (shared) parameter must live in one unit: sharding the modules that share it separately breaks the tie.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostics, Location, error, warning


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.frozen
class ShardDirective:
    """Shard one module: ``fully_shard(module, **kwargs)``.

    Attributes:
        module: the module's name in the LightningModule (``named_modules``).
        key: the ``fsdp_plan`` key (a name or regex) that selected it.
        kwargs: ``fsdp_default_kwargs`` updated with the key's own keyword arguments.
    """

    module: str
    key: str
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen, hash=False)


@attrs.frozen
class ShardingPlan:
    """The modules to shard, children before their parents (FSDP2 shards bottom-up), and what to tell the user.

    Attributes:
        directives: one per module to shard, deepest modules first, plan order within a depth.
        notes: warnings (containers skipped, modules selected by two keys).
    """

    directives: tuple[ShardDirective, ...]
    notes: Diagnostics = ()

    @property
    def modules(self) -> tuple[str, ...]:
        """The names of the modules to shard, in application order."""
        return tuple(directive.module for directive in self.directives)


def _depth(module: str) -> int:
    return module.count(".") + 1 if module else 0


def _compiled(key: str, where: Location) -> re.Pattern[str] | Diagnostics:
    try:
        return re.compile(key)
    except re.error as exc:
        return (error("invalid-regex", f"fsdp_plan key {key!r} is not a valid regex: {exc}", where),)


def _matches(key: str, pattern: re.Pattern[str], names: list[str], where: Location) -> list[str] | Diagnostics:
    matched = [key] if key in names else [name for name in names if pattern.match(name)]
    if matched:
        return matched
    hint = "use a module name from model.named_modules() (keys are matched from the start with re.match)"
    message = f"The module or regex {key!r} given in fsdp_plan did not match any named module of the model"
    return (error("fsdp-plan-no-match", message, where, hint),)


def _malformed_entry(key: object, own: object, where: Location) -> Diagnostics:
    if not isinstance(key, str) or not key:
        hint = "name a submodule (the root cannot be sharded by the plan: shard it in configure_model)"
        return (error("fsdp-plan-key", f"fsdp_plan key {key!r} must be a non-empty module name or regex", where, hint),)
    if own is not None and not isinstance(own, Mapping):
        message = f"fsdp_plan[{key!r}] must be a mapping of fully_shard keyword arguments, got {own!r}"
        return (error("fsdp-plan-value", message, where, "write {} for the defaults"),)
    return ()


def _choose(
    name: str, key: str, kwargs: Mapping[str, Any], chosen: dict[str, ShardDirective], skipped: frozenset[str]
) -> Diagnostics:
    """Add a directive for ``name`` unless it is a container or already chosen (a warning says which)."""
    where = Location(None, "fsdp_plan", subpath=(key,))
    if name in skipped:
        message = f"{name!r} (matched by {key!r}) is a ModuleList/ModuleDict container: it is not sharded"
        return (warning("fsdp-plan-container", message, where, "name its children instead"),)
    if name in chosen:
        message = f"{name!r} is matched by {chosen[name].key!r} and {key!r}: the first key's arguments apply"
        return (warning("fsdp-plan-overlap", message, where),)
    chosen[name] = ShardDirective(name, key, kwargs)
    return ()


def plan_sharding(
    plan: Mapping[str, Mapping[str, Any] | None],
    defaults: Mapping[str, Any] | None,
    modules: Iterable[str],
    containers: Iterable[str] = (),
) -> Result[ShardingPlan, Diagnostics]:
    """Resolve an ``fsdp_plan`` against a model's module names, as FTS does: each key is a module name or a regex
    matched from the start of the name (``re.match``); a key that matches no module is an error; ``ModuleList`` and
    ``ModuleDict`` containers (``containers``) hold no computation of their own and are skipped with a warning.
    A key that is exactly a module's name selects that module only (as a regex, ``model`` would also select every
    module below it).

    A module selected by two keys keeps the first key's arguments (with a warning). Directives are ordered bottom-up
    so that nesting works whatever the plan's order.

    >>> plan = plan_sharding({r"model\\.\\d+$": {}, "model": {"reshard_after_forward": False}},
    ...                      {"reshard_after_forward": True}, ["model", "model.0", "model.1", "model.1.act"])
    >>> [(d.module, dict(d.kwargs)) for d in plan.unwrap().directives]  # doctest: +NORMALIZE_WHITESPACE
    [('model.0', {'reshard_after_forward': True}), ('model.1', {'reshard_after_forward': True}),
     ('model', {'reshard_after_forward': False})]
    >>> plan_sharding({"head": {}}, None, ["model"]).failure()[0].code
    'fsdp-plan-no-match'
    """
    names = [name for name in modules if name]
    skipped = frozenset(containers)
    problems: Diagnostics = ()
    notes: Diagnostics = ()
    chosen: dict[str, ShardDirective] = {}
    for key, own in plan.items():
        where = Location(None, "fsdp_plan", subpath=(key,))
        malformed = _malformed_entry(key, own, where)
        if malformed:
            problems += malformed
            continue
        pattern = _compiled(str(key), where)
        matched = _matches(str(key), pattern, names, where) if isinstance(pattern, re.Pattern) else pattern
        if not isinstance(matched, list):
            problems += matched
            continue
        kwargs = {**(defaults or {}), **(own or {})}
        for name in matched:
            notes += _choose(name, str(key), kwargs, chosen, skipped)
    if problems:
        return Failure(problems)
    ordered = sorted(chosen.values(), key=lambda directive: -_depth(directive.module))
    return Success(ShardingPlan(tuple(ordered), notes))


def units_of(params: Iterable[str], units: Iterable[str]) -> dict[str, str]:
    """Each parameter's innermost unit; ``""`` (the root unit) for parameters outside every unit.

    Linear in parameters times name depth: the unit names are looked up by each parameter's module prefixes.

    >>> units_of(["model.0.weight", "model.0.sub.bias", "head.weight"], ["model.0"])
    {'model.0.weight': 'model.0', 'model.0.sub.bias': 'model.0', 'head.weight': ''}
    """
    known = frozenset(units)
    owners: dict[str, str] = {}
    for param in params:
        parts = param.split(".")[:-1]
        prefixes = (".".join(parts[:end]) for end in range(len(parts), 0, -1))
        owners[param] = next((prefix for prefix in prefixes if prefix in known), "")
    return owners


def _unit_label(unit: str) -> str:
    return repr(unit) if unit else "the root unit (parameters of modules not wrapped on their own)"


def _phase_of(phases: Iterable[Iterable[str]], unscheduled: Iterable[str]) -> dict[str, int]:
    """Each parameter's phase; ``-1`` for parameters that never thaw."""
    phase_of: dict[str, int] = {}
    for depth, names in enumerate(phases):
        for name in names:
            phase_of.setdefault(name, depth)
    for name in unscheduled:
        phase_of.setdefault(name, -1)
    return phase_of


def _split_conflict(unit: str, split: Mapping[int, list[str]]) -> Diagnostics:
    def listed(depth: int, names: list[str]) -> str:
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return f"{'never thawed (unscheduled)' if depth < 0 else f'phase {depth}'}: {', '.join(names[:3])}{more}"

    parts = "; ".join(listed(depth, names) for depth, names in sorted(split.items()))
    hint = (
        "wrap the modules of each phase in their own FSDP unit (add them to the auto_wrap_policy or "
        "awp_overrides), move these parameters into one phase, or use FSDPStrategy(use_orig_params=True)"
    )
    message = f"{_unit_label(unit)} is one FSDP flat parameter, but its parameters thaw in different phases ({parts})"
    return (error("fsdp-flat-param-split", message, Location(max(max(split), 0), "params"), hint),)


def flat_parameter_conflicts(
    unit_of: Mapping[str, str], phases: Iterable[Iterable[str]], unscheduled: Iterable[str] = ()
) -> Diagnostics:
    """Units whose parameters would thaw in different phases (an FSDP1 flat parameter has one ``requires_grad``).

    ``unit_of`` maps each parameter to its unit (see :func:`units_of`); ``phases`` lists each phase's parameters;
    unscheduled parameters never thaw, so a unit mixing them with scheduled ones is a conflict too. Each conflict is
    placed at the latest phase involved.

    >>> problems = flat_parameter_conflicts({"a.w": "a", "a.b": "a", "h.w": ""}, [["h.w", "a.w"], ["a.b"]])
    >>> problems[0].code, str(problems[0].location)
    ('fsdp-flat-param-split', 'phase 1 › params')
    >>> flat_parameter_conflicts({"a.w": "a", "a.b": "a"}, [["a.w", "a.b"]])
    ()
    """
    phase_of = _phase_of(phases, unscheduled)
    by_unit: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for param, unit in unit_of.items():
        if param in phase_of:
            by_unit[unit][phase_of[param]].append(param)
    return tuple(
        problem for unit, split in by_unit.items() if len(split) > 1 for problem in _split_conflict(unit, split)
    )


def split_ties(unit_of: Mapping[str, str], aliases: Mapping[str, str]) -> Diagnostics:
    """Tied parameters whose names fall in different units: sharding would break the tie.

    ``aliases`` maps each extra name of a shared parameter to the name the model registers it under.

    >>> split_ties({"wte.weight": "", "lm_head.weight": "lm_head"}, {"lm_head.weight": "wte.weight"})[0].code
    'fsdp-split-tie'
    >>> split_ties({"wte.weight": "", "lm_head.weight": ""}, {"lm_head.weight": "wte.weight"})
    ()
    """
    problems = []
    for alias, registered in aliases.items():
        here, there = unit_of.get(alias, ""), unit_of.get(registered, "")
        if here != there:
            message = (
                f"{alias!r} is tied to {registered!r}, but they would be sharded in different units "
                f"({_unit_label(here)} and {_unit_label(there)})"
            )
            hint = "shard both modules in one unit (for example their common parent), not each on its own"
            problems.append(error("fsdp-split-tie", message, Location(None, "fsdp_plan"), hint))
    return tuple(problems)


__all__ = [
    "ShardDirective",
    "ShardingPlan",
    "flat_parameter_conflicts",
    "plan_sharding",
    "split_ties",
    "units_of",
]
