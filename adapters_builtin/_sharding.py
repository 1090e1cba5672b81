"""What the FSDP adapters share: module facts for the core's sharding checks, and activation checkpointing."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import nn

from finetuning_scheduler.core import Diagnostics, Location, split_ties, units_of, warning
from finetuning_scheduler.shell.engine import inventory


def module_names(module: nn.Module) -> tuple[list[str], list[str]]:
    """The module's submodule names, and those of them that are ``ModuleList``/``ModuleDict`` containers.

    >>> module_names(nn.Sequential(nn.ModuleList([nn.Linear(1, 1)])))
    (['', '0', '0.0'], ['0'])
    """
    names, containers = [], []
    for name, child in module.named_modules():
        names.append(name)
        if isinstance(child, nn.ModuleList | nn.ModuleDict):
            containers.append(name)
    return names, containers


def every_param_name(module: nn.Module) -> list[str]:
    """Every name of every parameter, tied names included (``named_parameters`` gives a shared tensor once).

    >>> tied = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    >>> tied[1].weight = tied[0].weight
    >>> every_param_name(tied)
    ['0.weight', '1.weight']
    """
    return [name for name, _ in module.named_parameters(remove_duplicate=False)]


def tie_problems(module: nn.Module, units: Iterable[str]) -> Diagnostics:
    """Tied parameters that the given units (module names, each sharded on its own) would split.

    >>> tied = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    >>> tied[1].weight = tied[0].weight
    >>> [problem.code for problem in tie_problems(tied, ["1"])], tie_problems(tied, [])
    (['fsdp-split-tie'], ())
    """
    aliases = inventory(module).aliases
    if not aliases:
        return ()
    # A module registered under two names is one unit under both: name each unit by its module's first name.
    sharded = {id(module.get_submodule(name)) for name in units}
    first_name: dict[int, str] = {}
    unit_name: dict[str, str] = {"": ""}
    for name, child in module.named_modules(remove_duplicate=False):
        if id(child) in sharded:
            unit_name[name] = first_name.setdefault(id(child), name)
    owners = units_of(every_param_name(module), [name for name in unit_name if name])
    return split_ties({param: unit_name[unit] for param, unit in owners.items()}, aliases)


ACTIVATION_CHECKPOINT_MODES = ("composable", "wrapped", "wrapped_offload")


def activation_checkpoint_mode(setting: Any, where: str) -> tuple[str, dict[str, Any], Diagnostics]:
    """The ``act_ckpt`` alias as (mode, options): ``[mode]``, ``[mode, {options}]`` or a bare mode. An unknown mode
    falls back to ``composable`` with a warning, as in FTS."""
    listed = isinstance(setting, Sequence) and not isinstance(setting, str)
    mode = setting[0] if listed and setting else setting
    options = dict(setting[1] or {}) if listed and len(setting) > 1 and isinstance(setting[1], Mapping | None) else {}
    if mode in ACTIVATION_CHECKPOINT_MODES:
        return str(mode), options, ()
    message = f"act_ckpt mode {mode!r} of {where!r} is not one of {list(ACTIVATION_CHECKPOINT_MODES)}: using composable"
    where_in_plan = Location(None, "fsdp_plan", subpath=(where,))
    return "composable", options, (warning("fsdp-act-ckpt-mode", message, where_in_plan),)


def apply_activation_checkpointing(root: nn.Module, name: str, mode: str, options: Mapping[str, Any]) -> nn.Module:
    """Checkpoint a submodule's activations; the wrapped modes replace it in its parent (the names then gain
    ``_checkpoint_wrapped_module.``, which the FSDP adapters' schedules never show). Returns the module to shard."""
    target = root.get_submodule(name)
    if mode == "composable":
        from torch.distributed._composable.checkpoint_activation import checkpoint

        checkpoint(target, **options)
        return target
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper, offload_wrapper

    wrapped = offload_wrapper(target) if mode == "wrapped_offload" else checkpoint_wrapper(target, **options)
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, wrapped)
    return wrapped


__all__ = [
    "ACTIVATION_CHECKPOINT_MODES",
    "activation_checkpoint_mode",
    "apply_activation_checkpointing",
    "every_param_name",
    "module_names",
    "predicted_fsdp_units",
    "tie_problems",
]


def predicted_fsdp_units(root: nn.Module, policy: Any, mixed_precision: Any = None) -> list[str]:
    """The names of the modules FSDP1 will wrap on their own (each holds one ``FlatParameter``), without wrapping.

    The policy is asked as FSDP asks it: a ``_Policy`` (``ModuleWrapPolicy``, ``CustomPolicy``) through its own
    ``_run_policy``, a callable policy (``size_based_auto_wrap_policy``) by a dry run of FSDP's recursive wrap that
    records instead of wrapping. With a policy and mixed precision, FSDP wraps the modules it keeps in full precision
    (BatchNorm) on their own too. The root is always a unit and is not listed.

    >>> from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    >>> predicted_fsdp_units(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)), ModuleWrapPolicy({nn.Linear}))
    ['0', '2']
    """
    from torch.distributed.fsdp.wrap import _or_policy, _Policy, _recursive_wrap, _wrap_module_cls_individually

    keep_full = tuple(getattr(mixed_precision, "_module_classes_to_ignore", ()) or ()) if mixed_precision else ()
    targets: set[int] = set()
    if policy is None:
        pass
    elif isinstance(policy, _Policy):
        targets = {id(module) for module in policy._run_policy(root, set(), {})}
    else:
        if keep_full:
            by_class = functools.partial(_wrap_module_cls_individually, module_classes=keep_full)
            policy = functools.partial(_or_policy, policies=[policy, by_class])

        def record(module: nn.Module, **_: Any) -> nn.Module:
            targets.add(id(module))
            return module

        _recursive_wrap(root, policy, record, set(), set(), only_wrap_children=True)
    if keep_full and isinstance(policy, _Policy):  # without any policy FSDP wraps nothing on its own
        targets |= {id(module) for module in root.modules() if isinstance(module, keep_full)}
    return [name for name, module in root.named_modules() if name and id(module) in targets]
