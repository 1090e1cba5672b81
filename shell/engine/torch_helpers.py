"""Torch helpers that apply the core's decisions to a module and its optimizer. No Lightning import here.

Any training loop can use them: build an :func:`inventory`, :func:`freeze` the model, :func:`thaw` the names of a
phase and :func:`add_param_groups` for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from finetuning_scheduler.core import ParamInventory

from ._lr_schedulers import extend_scheduler_state, per_group_state_size, scheduled_lr
from ._param_index import ParamIndex, derived, param_index

_BATCH_NORM = nn.modules.batchnorm._BatchNorm


def inventory(module: nn.Module) -> ParamInventory:
    """The module's parameters as data, in O(n): names, sizes, shapes, dtypes, owning modules and tied aliases.

    >>> inventory(nn.Linear(2, 1)).names
    ('weight', 'bias')
    """
    return derived(module, "inventory", _inventory)


def _inventory(index: ParamIndex) -> ParamInventory:
    names = tuple(index.named)
    tensors = tuple(index.named.values())
    return ParamInventory(
        names,
        numels=tuple(t.numel() for t in tensors),
        shapes=tuple(tuple(t.shape) for t in tensors),
        dtypes=tuple(str(t.dtype).removeprefix("torch.") for t in tensors),
        modules=tuple(n.rpartition(".")[0] for n in names),
        aliases=dict(index.aliases),
    )


def freeze(module: nn.Module, bn_track_running_stats: bool = True) -> None:
    """Make every parameter untrainable; BatchNorm layers keep (or stop) tracking running statistics.

    >>> layer = nn.Linear(2, 1); freeze(layer); layer.weight.requires_grad
    False
    """
    index = param_index(module)
    for param in index.named.values():
        param.requires_grad = False
    for norm in index.batch_norms:
        norm.track_running_stats = bn_track_running_stats


def thaw(module: nn.Module, names: Iterable[str]) -> tuple[str, ...]:
    """Make the named parameters trainable; returns the names that were frozen before.

    >>> layer = nn.Linear(2, 1); freeze(layer); thaw(layer, ["bias"])
    ('bias',)
    """
    params = param_index(module).named
    newly: list[str] = []
    for name in names:
        param = params[name]
        if not param.requires_grad:
            newly.append(name)
        param.requires_grad = True
    return tuple(newly)


def trainable_counts(module: nn.Module) -> tuple[int, int, int]:
    """Trainable parameter tensors, their elements, and all parameter elements (one pass).

    >>> layers = nn.Sequential(nn.Linear(3, 1), nn.Linear(1, 1))
    >>> _ = layers[0].requires_grad_(False)
    >>> trainable_counts(layers)
    (2, 2, 6)
    """
    tensors = trainable = total = 0
    for param in param_index(module).named.values():
        total += param.numel()
        if param.requires_grad:
            tensors += 1
            trainable += param.numel()
    return tensors, trainable, total


def trainable_names(module: nn.Module) -> tuple[str, ...]:
    """Names of the parameters that currently require gradients.

    >>> trainable_names(nn.Linear(2, 1))
    ('weight', 'bias')
    """
    return tuple(name for name, param in param_index(module).named.items() if param.requires_grad)


def _in_any_group(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def _split_no_decay(
    named: list[tuple[str, nn.Parameter]], no_decay: Sequence[str] | None
) -> list[tuple[str, list[nn.Parameter], dict[str, Any]]]:
    if not no_decay:
        return [("", [p for _, p in named], {})]
    decay = [p for n, p in named if not any(nd in n for nd in no_decay)]
    skip = [p for n, p in named if any(nd in n for nd in no_decay)]
    # FTS adds both groups even when one is empty, so group counts match its runs and checkpoints.
    return [("", decay, {}), ("/no_decay", skip, {"weight_decay": 0.0})]


def add_param_groups(
    optimizer: torch.optim.Optimizer,
    module: nn.Module,
    names: Iterable[str],
    lr: float,
    *,
    name: str | None = None,
    no_decay: Sequence[str] | None = None,
    schedulers: Sequence[Any] = (),
    apply_lambdas: bool = False,
) -> int:
    """Add parameter group(s) for the named, trainable parameters that are not in any group yet.

    Returns the number of groups added (0 when there is nothing new: replaying a phase is harmless). With
    ``no_decay``, parameters whose names contain one of its strings go in a second group with no weight decay.
    LR schedulers get their per-group state extended.

    >>> model = nn.Linear(2, 1); opt = torch.optim.SGD([model.weight], lr=0.1)
    >>> add_param_groups(opt, model, ["bias"], lr=0.01, name="phase1"), opt.param_groups[1]["name"]
    (1, 'phase1')
    """
    wanted = set(names)
    taken = _in_any_group(optimizer)
    in_order = param_index(module).named.items()  # in the module's order, as FTS adds them
    named = [(n, p) for n, p in in_order if n in wanted and p.requires_grad and id(p) not in taken]
    if not named:
        return 0
    group_lr = scheduled_lr(lr, schedulers, apply_lambdas)
    parts = _split_no_decay(named, no_decay)
    for suffix, params, extra in parts:
        group: dict[str, Any] = {"params": params, "lr": group_lr, "initial_lr": group_lr, **extra}
        if name is not None:
            group["name"] = name + suffix
        optimizer.add_param_group(group)
    for scheduler in schedulers:
        extend_scheduler_state(scheduler, len(parts), lr)
    return len(parts)


def truncate_param_groups(optimizer: torch.optim.Optimizer, keep: int) -> None:
    """Drop every parameter group after the first ``keep`` (and the optimizer state of their parameters)."""
    for group in optimizer.param_groups[keep:]:
        for param in group["params"]:
            optimizer.state.pop(param, None)
    del optimizer.param_groups[keep:]


def materialize_optimizer_state(optimizer: torch.optim.Optimizer) -> bool:
    """Give every trainable parameter of the optimizer its state (``exp_avg``, ``step``...) by a step with zero
    gradients and zero learning rates, which changes no weight; returns whether a step was needed.

    A distributed checkpoint loads optimizer state in place, into the state the optimizer already has: a group added
    since the last step (a resumed fit's rebuilt phases) has none, and its saved state would not load. Any existing
    state the step touches is overwritten by the load that follows.

    >>> layer = nn.Linear(2, 1)
    >>> adam = torch.optim.Adam(layer.parameters(), lr=0.1)
    >>> before = layer.weight.detach().clone()
    >>> materialize_optimizer_state(adam), len(adam.state), torch.equal(layer.weight, before)
    (True, 2, True)
    """
    params = [param for group in optimizer.param_groups for param in group["params"] if param.requires_grad]
    if all(param in optimizer.state for param in params):
        return False
    grads = {param: param.grad for param in params}
    lrs = [group["lr"] for group in optimizer.param_groups]
    for param in params:
        param.grad = torch.zeros_like(param)
    for group in optimizer.param_groups:
        group["lr"] = torch.zeros_like(group["lr"]) if isinstance(group["lr"], torch.Tensor) else 0.0
    try:
        optimizer.step()
    finally:
        for group, lr in zip(optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        for param, grad in grads.items():
            param.grad = grad
    return True


def group_names(optimizer: torch.optim.Optimizer, module: nn.Module) -> list[list[str]]:
    """The parameter names in each group of ``optimizer``.

    >>> model = nn.Linear(2, 1); group_names(torch.optim.SGD(model.parameters(), lr=0.1), model)
    [['weight', 'bias']]
    """
    by_id = {id(p): n for n, p in param_index(module).named.items()}
    return [[by_id.get(id(p), "?") for p in group["params"]] for group in optimizer.param_groups]


def track_bn_running_stats(module: nn.Module, names: Iterable[str]) -> None:
    """Let the BatchNorm layers owning the named parameters track running statistics again (their phase thawed).

    >>> model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)); freeze(model, bn_track_running_stats=False)
    >>> track_bn_running_stats(model, ["1.weight"]); model[1].track_running_stats
    True
    """
    owners = {name.rpartition(".")[0] for name in names}
    for name, sub in module.named_modules():
        if name in owners and isinstance(sub, _BATCH_NORM):
            sub.track_running_stats = True


def planned_group_count(names: Sequence[str], no_decay: Sequence[str] | Callable[[str], bool] | None) -> int:
    """How many param groups a phase of ``names`` adds: two with ``no_decay`` substrings (FTS adds both, even an
    empty one), one per non-empty side with a predicate, one without.

    >>> planned_group_count(["a.weight", "a.bias"], ["bias"]), planned_group_count(["a.weight"], lambda n: "bias" in n)
    (2, 1)
    """
    if callable(no_decay):
        return int(any(not no_decay(n) for n in names)) + int(any(no_decay(n) for n in names))
    return (2 if no_decay else 1) if names else 0


def optimizer_problems(
    optimizer: torch.optim.Optimizer,
    module: nn.Module,
    schedulers: Sequence[Any] = (),
    saved_group_sizes: Sequence[int] | None = None,
) -> list[str]:
    """Consistency problems between the optimizer, its LR schedulers and the model (empty when all is well).

    Every trainable parameter must be in exactly one group, no frozen parameter in any, every scheduler must hold
    per-group state for exactly the optimizer's groups, and the groups must have the ``saved_group_sizes`` (of a
    checkpoint's optimizer) when given.
    """
    problems: list[str] = []
    seen: dict[int, int] = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            seen[id(param)] = seen.get(id(param), 0) + 1
    for pname, param in param_index(module).named.items():
        count = seen.get(id(param), 0)
        if param.requires_grad and count != 1:
            problems.append(f"trainable parameter {pname} is in {count} optimizer groups (expected exactly 1)")
        if not param.requires_grad and count:
            problems.append(f"frozen parameter {pname} is in an optimizer group")
    groups = len(optimizer.param_groups)
    for scheduler in schedulers:
        per_group = per_group_state_size(scheduler)
        if per_group != groups:
            problems.append(f"{type(scheduler).__name__} holds state for {per_group} groups, not {groups}")
    sizes = [len(group["params"]) for group in optimizer.param_groups]
    if saved_group_sizes is not None and list(saved_group_sizes) != sizes:
        problems.append(
            f"the checkpoint's optimizer has groups of sizes {list(saved_group_sizes)}, the schedule gives {sizes}"
        )
    return problems


__all__ = [
    "add_param_groups",
    "extend_scheduler_state",
    "freeze",
    "group_names",
    "inventory",
    "materialize_optimizer_state",
    "optimizer_problems",
    "planned_group_count",
    "thaw",
    "track_bn_running_stats",
    "trainable_counts",
    "trainable_names",
    "truncate_param_groups",
]
