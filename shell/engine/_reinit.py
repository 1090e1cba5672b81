"""Optimizer and LR-scheduler reinitialisation: check the classes a schedule names before training, and build them.

A schedule's ``new_optimizer`` / ``new_lr_scheduler`` blocks (and the implicit ``reinit_optim_cfg`` /
``reinit_lr_cfg``) name classes by ``class_path``. Importing a class runs its module's code: that is code execution
chosen by whoever wrote the schedule, as in FTS; ``allowed_prefixes`` restricts it to trusted modules (a class
outside them is an error and nothing is imported). Every block is checked when the fit is set up, with the
schedule's other errors and their file positions: the class imports, is an optimizer / LR scheduler, and accepts its
``init_args`` (tried against a throw-away parameter), and ``ReduceLROnPlateau`` has a ``monitor``. No Lightning here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from finetuning_scheduler.core import (
    ClassInit,
    Diagnostic,
    Diagnostics,
    ImplicitReinit,
    Location,
    LRSchedulerInit,
    OptimizerInit,
    Phase,
    RawSchedule,
    ResolvedSchedule,
    SourceMap,
    as_raw,
    depths_with_lr_scheduler,
    disallowed_class_paths,
    error,
    locate,
    phase_reinit_blocks,
    pl_lrs_cfg_problems,
    reinit_at,
    structure_leniently,
    warning,
)

from ._lr_schedulers import SUPPORTED_LR_SCHEDULERS

_LR_SCHEDULER_BASES = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


class ReinitError(ValueError):
    """A reinitialisation block names a class that cannot be used (the message says why)."""


def import_class(class_path: str) -> type:
    """The class at ``class_path`` (``package.module.Class``).

    >>> import_class("torch.optim.SGD").__name__
    'SGD'
    >>> import_class("torch.optim.NoSuchOptimizer")
    Traceback (most recent call last):
    ...
    finetuning_scheduler.shell.engine._reinit.ReinitError: module 'torch.optim' has no class 'NoSuchOptimizer'
    """
    module_name, _, name = class_path.rpartition(".")
    if not module_name:
        raise ReinitError(f"{class_path!r} is not a dotted class path (package.module.Class)")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises while importing
        raise ReinitError(f"module {module_name!r} could not be imported: {type(exc).__name__}: {exc}") from exc
    found = getattr(module, name, None)
    if not isinstance(found, type):
        raise ReinitError(f"module {module_name!r} has no class {name!r}")
    return found


def _init_args(init: ClassInit) -> dict[str, Any]:
    return {key: value for key, value in init.init_args.items() if key != "optimizer"}


def build_optimizer(spec: OptimizerInit, param_groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The optimizer ``spec`` names, over ``param_groups``; each group's ``initial_lr`` starts at its ``lr``."""
    cls = import_class(spec.optimizer_init.class_path)
    optimizer: torch.optim.Optimizer = cls(param_groups, **_init_args(spec.optimizer_init))
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return optimizer


def set_lrs_for_new_scheduler(optimizer: torch.optim.Optimizer, spec: LRSchedulerInit) -> None:
    """Each group's lr before a new scheduler takes it over, by FTS's precedence: ``init_pg_lrs`` (which also sets
    ``initial_lr``), else ``use_current_optimizer_pg_lrs`` (keep the current lr), else the group's ``initial_lr``."""
    explicit = list(spec.init_pg_lrs or ())
    for index, group in enumerate(optimizer.param_groups):
        if index < len(explicit):
            group["lr"] = group["initial_lr"] = explicit[index]
        elif not spec.use_current_optimizer_pg_lrs:
            group["lr"] = group.get("initial_lr", group["lr"])


def build_lr_scheduler(spec: LRSchedulerInit, optimizer: torch.optim.Optimizer) -> Any:
    """The LR scheduler ``spec`` names, on ``optimizer`` (whose groups' lrs are set first, see above)."""
    set_lrs_for_new_scheduler(optimizer, spec)  # the groups' initial_lr become the new scheduler's base rates
    cls = import_class(spec.lr_scheduler_init.class_path)
    return cls(optimizer, **_init_args(spec.lr_scheduler_init))


# -- checking before training ---------------------------------------------------------------------------------------


def _throwaway_optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)


def _ignored_optimizer_arg(init: ClassInit, where: Location, block: str) -> Iterator[Diagnostic]:
    if "optimizer" in init.init_args:
        yield warning(
            "reinit-init-args",
            "init_args.optimizer is ignored: the optimizer is the one being trained",
            Location(where.phase, where.key, subpath=(block, "init_args")),
            "remove the optimizer key",
        )


def _checked_class(
    init: ClassInit, where: Location, block: str, base: type | tuple[type, ...], kind: str
) -> tuple[type | None, Diagnostics]:
    """The class ``init`` names, if it imports and is a ``base``; else ``None`` and the located problem."""
    at = Location(where.phase, where.key, subpath=(block, "class_path"))
    try:
        cls = import_class(init.class_path)
    except ReinitError as exc:
        return None, (error("reinit-class", f"cannot import {init.class_path!r}: {exc}", at),)
    if not issubclass(cls, base):
        return None, (error("reinit-class", f"{init.class_path} is not {kind}", at),)
    return cls, ()


def _is_zero_redundancy(cls: type) -> bool:
    zero = getattr(getattr(torch.distributed, "optim", None), "ZeroRedundancyOptimizer", None)
    return isinstance(zero, type) and issubclass(cls, zero)


def _tried(cls: type, init: ClassInit, where: Location, block: str, target: object) -> Iterator[Diagnostic]:
    """Build ``cls`` once against a throw-away ``target`` (parameters or a one-group optimizer): do its init_args
    work? Per-group lists (``min_lr: [...]``, ``max_lr: [...]``) are left out: the groups do not exist yet."""
    scalar_args = {key: value for key, value in _init_args(init).items() if not isinstance(value, list | tuple)}
    try:
        cls(target, **scalar_args)
    except Exception as exc:
        args = Location(where.phase, where.key, subpath=(block, "init_args"))
        yield error("reinit-init-args", f"{cls.__name__} rejects its init_args: {type(exc).__name__}: {exc}", args)


def _optimizer_problems(spec: OptimizerInit, where: Location) -> Iterator[Diagnostic]:
    init = spec.optimizer_init
    yield from _ignored_optimizer_arg(init, where, "optimizer_init")
    cls, problems = _checked_class(init, where, "optimizer_init", torch.optim.Optimizer, "a torch.optim.Optimizer")
    yield from problems
    if cls is not None and _is_zero_redundancy(cls):
        at = Location(where.phase, where.key, subpath=("optimizer_init", "class_path"))
        message = f"{cls.__name__} shards its state across processes and cannot be built mid-fit here (as in FTS)"
        yield error("reinit-class", message, at, "use a torch.optim optimizer for the new phase")
    elif cls is not None:
        yield from _tried(cls, init, where, "optimizer_init", [nn.Parameter(torch.zeros(1))])


def _scheduler_problems(
    spec: LRSchedulerInit, where: Location, allow_untested: bool, uses_pl_lrs_cfg: bool = True
) -> Iterator[Diagnostic]:
    init = spec.lr_scheduler_init
    yield from _ignored_optimizer_arg(init, where, "lr_scheduler_init")
    cls, problems = _checked_class(init, where, "lr_scheduler_init", _LR_SCHEDULER_BASES, "a torch LR scheduler")
    yield from problems
    if cls is None:
        return
    at = Location(where.phase, where.key, subpath=("lr_scheduler_init", "class_path"))
    if not issubclass(cls, SUPPORTED_LR_SCHEDULERS):
        message = f"{cls.__name__} keeps per-group state the scheduler cannot extend when later phases add groups"
        fix = "use a torch.optim.lr_scheduler class (or a subclass), or pass allow_untested=True to try it anyway"
        yield (warning if allow_untested else error)("reinit-untested", message, at, fix)
    yield from _tried(cls, init, where, "lr_scheduler_init", _throwaway_optimizer())
    needs_monitor = uses_pl_lrs_cfg and issubclass(cls, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if needs_monitor and not spec.pl_lrs_cfg.get("monitor"):
        yield error(
            "reinit-monitor",
            "ReduceLROnPlateau needs the metric it watches: pl_lrs_cfg has no monitor",
            Location(where.phase, where.key, subpath=("pl_lrs_cfg",)),
        )


def _implicit_problems(implicit: ImplicitReinit, allow_untested: bool, uses_pl_lrs_cfg: bool) -> Diagnostics:
    found: list[Diagnostic] = []
    if implicit.optimizer is not None:
        found += _optimizer_problems(implicit.optimizer, Location(None, "reinit_optim_cfg"))
    if implicit.lr_scheduler is not None:
        where = Location(None, "reinit_lr_cfg")
        found += _scheduler_problems(implicit.lr_scheduler, where, allow_untested, uses_pl_lrs_cfg)
        found += pl_lrs_cfg_problems(implicit.lr_scheduler, Location(None, "reinit_lr_cfg", subpath=("pl_lrs_cfg",)))
    return tuple(found)


def reinit_problems(
    resolved: ResolvedSchedule,
    implicit: ImplicitReinit = ImplicitReinit(),
    allow_untested: bool = False,
    uses_pl_lrs_cfg: bool = True,
    allowed_prefixes: Sequence[str] | None = None,
) -> Diagnostics:
    """Every problem of the schedule's reinitialisation blocks (and the implicit ones), located in the schedule file.
    A class outside ``allowed_prefixes`` is reported alone, before any class is imported.

    >>> from finetuning_scheduler.core import ParamInventory, resolve_schedule
    >>> schedule = {0: {"params": ["a"]}, 1: {"params": ["b"], "new_lr_scheduler": {
    ...     "lr_scheduler_init": {"class_path": "torch.optim.lr_scheduler.ReduceLROnPlateau"}}}}
    >>> resolved = resolve_schedule(schedule, ParamInventory.from_names(["a", "b"])).unwrap()
    >>> [(d.code, str(d.location)) for d in reinit_problems(resolved)]
    [('reinit-monitor', 'phase 1 › new_lr_scheduler.pl_lrs_cfg')]
    """
    schedule = resolved.schedule
    return _problems_of(schedule.phases, schedule.source, implicit, allow_untested, uses_pl_lrs_cfg, allowed_prefixes)


def raw_reinit_problems(
    raw: RawSchedule | Mapping[Any, Any],
    implicit: ImplicitReinit = ImplicitReinit(),
    allow_untested: bool = False,
    uses_pl_lrs_cfg: bool = True,
    allowed_prefixes: Sequence[str] | None = None,
) -> Diagnostics:
    """The same checks on a schedule that did not validate, as far as it can be read: reported together with the
    schedule's other errors, so one run shows them all.

    >>> raw_reinit_problems({0: {"params": ["nowhere"]}, 1: {"params": ["b"], "new_optimizer": {
    ...     "optimizer_init": {"class_path": "torch.optim.Adamm"}}}})[0].code
    'reinit-class'
    """
    schedule, _ = structure_leniently(as_raw(raw))
    return _problems_of(schedule.phases, schedule.source, implicit, allow_untested, uses_pl_lrs_cfg, allowed_prefixes)


def _problems_of(
    phases: Sequence[Phase],
    source: SourceMap,
    implicit: ImplicitReinit,
    allow_untested: bool,
    uses_pl_lrs_cfg: bool,
    allowed_prefixes: Sequence[str] | None,
) -> Diagnostics:
    disallowed = disallowed_class_paths(phases, source, implicit, allowed_prefixes)
    if disallowed:
        return disallowed  # checking the others would import classes from modules nobody trusted
    found: list[Diagnostic] = []
    for where, spec in phase_reinit_blocks(phases, implicit):
        if isinstance(spec, OptimizerInit):
            found += _optimizer_problems(spec, where)
        else:
            found += _scheduler_problems(spec, where, allow_untested, uses_pl_lrs_cfg)
    # The implicit configurations are constructor arguments: they have no position in the schedule file.
    return _implicit_problems(implicit, allow_untested, uses_pl_lrs_cfg) + locate(tuple(found), source)


def init_pg_lrs_problems(
    resolved: ResolvedSchedule, implicit: ImplicitReinit, groups_before: Callable[[int], int]
) -> Diagnostics:
    """``init_pg_lrs`` lists with another length than the groups that exist when their scheduler is built (those
    of the phases before it, ``groups_before(depth)``; the phase's own groups start at its ``lr``), located."""
    found = []
    for depth in depths_with_lr_scheduler(resolved, implicit):
        spec = reinit_at(resolved, depth, implicit).lr_scheduler
        if spec is None or spec.init_pg_lrs is None:
            continue
        expected = groups_before(depth)
        if len(spec.init_pg_lrs) != expected:
            message = (
                f"init_pg_lrs has {len(spec.init_pg_lrs)} lr(s), but {expected} param group(s) exist when phase "
                f"{depth} builds its LR scheduler (the groups of phases 0..{depth - 1})"
            )
            where = Location(depth, "new_lr_scheduler", subpath=("init_pg_lrs",))
            found.append(error("reinit-init-pg-lrs", message, where, f"give {expected} lrs, one per group in order"))
    return locate(tuple(found), resolved.schedule.source)


__all__ = [
    "ReinitError",
    "build_lr_scheduler",
    "build_optimizer",
    "import_class",
    "init_pg_lrs_problems",
    "raw_reinit_problems",
    "reinit_problems",
    "set_lrs_for_new_scheduler",
]
