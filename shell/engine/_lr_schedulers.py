"""LR-scheduler surgery: torch schedulers size their per-group state when they are built, and phases change the
groups afterwards. Everything that reaches into a scheduler's per-group lists lives here. No Lightning import.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import attrs
import torch

SUPPORTED_LR_SCHEDULERS: tuple[type, ...] = (
    torch.optim.lr_scheduler.LambdaLR,
    torch.optim.lr_scheduler.MultiplicativeLR,
    torch.optim.lr_scheduler.StepLR,
    torch.optim.lr_scheduler.MultiStepLR,
    torch.optim.lr_scheduler.ExponentialLR,
    torch.optim.lr_scheduler.CosineAnnealingLR,
    torch.optim.lr_scheduler.ReduceLROnPlateau,
    torch.optim.lr_scheduler.CosineAnnealingWarmRestarts,
    torch.optim.lr_scheduler.ConstantLR,
    torch.optim.lr_scheduler.LinearLR,
    # Beyond FTS's ten: every other scheduler of torch.optim.lr_scheduler follows new groups too.
    torch.optim.lr_scheduler.PolynomialLR,
    torch.optim.lr_scheduler.CyclicLR,
    torch.optim.lr_scheduler.OneCycleLR,
    torch.optim.lr_scheduler.SequentialLR,
    torch.optim.lr_scheduler.ChainedScheduler,
)
"""The schedulers whose per-group state the engine knows how to extend (every class of ``torch.optim.lr_scheduler``,
subclasses included; ``tests/shell/test_lr_schedulers.py`` checks each one). A scheduler outside them (a custom
``LRScheduler`` subclass) keeps state the engine cannot know: it needs ``allow_untested``."""


def unsupported_scheduler(scheduler: object) -> str | None:
    """Why ``scheduler`` is not known to follow new param groups; ``None`` when it is.

    >>> model = torch.nn.Linear(1, 1); opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> unsupported_scheduler(torch.optim.lr_scheduler.StepLR(opt, 1)) is None
    True
    >>> class Halving(torch.optim.lr_scheduler.LRScheduler):
    ...     def get_lr(self): return [group["lr"] / 2 for group in self.optimizer.param_groups]
    >>> unsupported_scheduler(Halving(opt))
    'The LR scheduler Halving is not supported by FinetuningScheduler'
    """
    if isinstance(scheduler, SUPPORTED_LR_SCHEDULERS):
        return None
    return f"The LR scheduler {type(scheduler).__name__} is not supported by FinetuningScheduler"


def per_group_state_size(scheduler: Any) -> int:
    """How many param groups the scheduler holds state for (``min_lrs`` for ReduceLROnPlateau, else ``base_lrs``;
    a ``SequentialLR`` / ``ChainedScheduler`` by its first child)."""
    children = getattr(scheduler, "_schedulers", None)
    if isinstance(children, list) and children:
        return per_group_state_size(children[0])
    return len(getattr(scheduler, "min_lrs", None) or getattr(scheduler, "base_lrs", []))


def scheduled_lr(lr: float, schedulers: Sequence[Any], apply_lambdas: bool) -> float:
    """A new group's starting lr: ``lr``, scaled by each scheduler's current lambda when ``apply_lambdas``."""
    for scheduler in schedulers:
        lambdas = getattr(scheduler, "lr_lambdas", None)
        if apply_lambdas and lambdas:
            lr *= lambdas[-1](scheduler.last_epoch)
    return lr


def extend_scheduler_state(scheduler: Any, added: int, lr: float) -> None:
    """Grow an LR scheduler's per-group state for the ``added`` groups just appended to its optimizer.

    Every class in ``torch.optim.lr_scheduler`` is covered, each group getting ``lr`` as its base rate (FTS's rule
    for its ten classes, kept exactly): ``base_lrs`` (or ``ReduceLROnPlateau``'s ``min_lrs``, repeating the first),
    ``lr_lambdas`` (repeating the last), ``_last_lr``; ``CyclicLR``'s ``max_lrs`` and momentum bounds and
    ``OneCycleLR``'s per-group ``initial_lr`` / ``max_lr`` / ``min_lr`` and momentum keys, both scaled from the first
    group so the new group cycles in proportion; and the children of ``SequentialLR`` and ``ChainedScheduler``.

    >>> model = torch.nn.Linear(1, 1); opt = torch.optim.SGD([model.weight], lr=0.1)
    >>> scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    >>> opt.add_param_group({"params": [model.bias], "lr": 0.01}); extend_scheduler_state(scheduler, 1, 0.01)
    >>> scheduler.base_lrs, scheduler.get_last_lr()
    ([0.1, 0.01], [0.1, 0.01])
    """
    if added <= 0:
        return
    children = getattr(scheduler, "_schedulers", None)
    if isinstance(children, list):  # SequentialLR, ChainedScheduler: the children hold the per-group state
        for child in children:
            extend_scheduler_state(child, added, lr)
        if not any(getattr(child, "_last_lr", None) is scheduler._last_lr for child in children):
            _extend_last_lr(scheduler, added)  # SequentialLR may share its current child's list
        return
    if hasattr(scheduler, "min_lrs"):
        scheduler.min_lrs.extend([scheduler.min_lrs[0]] * added)
    else:
        scheduler.base_lrs.extend([lr] * added)
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if lambdas:
        lambdas.extend([lambdas[-1]] * (len(scheduler.base_lrs) - len(lambdas)))
    if isinstance(scheduler, torch.optim.lr_scheduler.CyclicLR):
        _extend_cyclic(scheduler, added, lr)
    if isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR):
        _extend_one_cycle(scheduler, added, lr)
    _extend_last_lr(scheduler, added)


def _extend_last_lr(scheduler: Any, added: int) -> None:
    last = getattr(scheduler, "_last_lr", None)
    if isinstance(last, list):
        last.extend(group["lr"] for group in scheduler.optimizer.param_groups[-added:])


def _extend_cyclic(scheduler: Any, added: int, lr: float) -> None:
    # The new groups cycle between lr and lr * (max / base) of the first group: the same shape, in proportion.
    scale = scheduler.max_lrs[0] / scheduler.base_lrs[0] if scheduler.base_lrs[0] else 1.0
    scheduler.max_lrs.extend([lr * scale] * added)
    if scheduler.cycle_momentum:
        scheduler.base_momentums.extend([scheduler.base_momentums[0]] * added)
        scheduler.max_momentums.extend([scheduler.max_momentums[0]] * added)
    for group in scheduler.optimizer.param_groups[-added:]:
        group["lr"] = lr
        if scheduler.cycle_momentum:
            group["base_momentum"], group["max_momentum"] = scheduler.base_momentums[0], scheduler.max_momentums[0]


def _extend_one_cycle(scheduler: Any, added: int, lr: float) -> None:
    # OneCycleLR reads its bounds from each group: the new groups peak at lr, with the first group's ratios.
    first = scheduler.optimizer.param_groups[0]
    for group in scheduler.optimizer.param_groups[-added:]:
        group["max_lr"] = lr
        group["initial_lr"] = lr * first["initial_lr"] / first["max_lr"]
        group["min_lr"] = lr * first["min_lr"] / first["max_lr"]
        for key in ("max_momentum", "base_momentum"):
            if key in first:
                group[key] = first[key]
    scheduler.base_lrs[-added:] = [group["initial_lr"] for group in scheduler.optimizer.param_groups[-added:]]


def repoint(scheduler: Any, optimizer: torch.optim.Optimizer) -> None:
    """Make an LR scheduler (and a composite's children) drive ``optimizer`` instead of the one it was built on."""
    scheduler.optimizer = optimizer
    for child in getattr(scheduler, "_schedulers", None) or ():
        repoint(child, optimizer)


def forget_groups(schedulers: Sequence[Any]) -> None:
    """Before the optimizer's groups are rebuilt from scratch: restart each scheduler and drop its base rates (the
    rebuilt groups bring their own). ReduceLROnPlateau keeps its ``min_lrs`` until :func:`adopt_rebuilt_groups`."""
    for scheduler in schedulers:
        scheduler.last_epoch = -1
        if not hasattr(scheduler, "min_lrs"):
            scheduler.base_lrs = []


def adopt_rebuilt_groups(schedulers: Sequence[Any], original_groups: int) -> None:
    """After the rebuilt groups were added (extending each scheduler): drop ReduceLROnPlateau's ``min_lrs`` of the
    ``original_groups`` that are gone, and take the others' initial step so their lrs start on schedule."""
    for scheduler in schedulers:
        if hasattr(scheduler, "min_lrs"):
            scheduler.min_lrs = scheduler.min_lrs[original_groups:]
        else:
            scheduler._initial_step()


@attrs.frozen
class LRState:
    """The optimizer's group lrs and its schedulers' state at one moment (to continue the LR trajectory after the
    weights are rolled back to the best checkpoint)."""

    lrs: tuple[float, ...]
    scheduler_states: tuple[dict[str, Any], ...]


def capture_lr_state(optimizer: torch.optim.Optimizer, schedulers: Sequence[Any]) -> LRState:
    """The group lrs and a deep copy of every scheduler's state now."""
    return LRState(
        tuple(group["lr"] for group in optimizer.param_groups),
        tuple(copy.deepcopy(scheduler.state_dict()) for scheduler in schedulers),
    )


def restore_lr_state(optimizer: torch.optim.Optimizer, schedulers: Sequence[Any], state: LRState) -> None:
    """Put back what :func:`capture_lr_state` saw (for the groups that exist in both)."""
    for scheduler, saved in zip(schedulers, state.scheduler_states, strict=False):
        scheduler.load_state_dict(saved)
    for group, lr in zip(optimizer.param_groups, state.lrs, strict=False):
        group["lr"] = lr


__all__ = [
    "SUPPORTED_LR_SCHEDULERS",
    "LRState",
    "adopt_rebuilt_groups",
    "capture_lr_state",
    "extend_scheduler_state",
    "forget_groups",
    "per_group_state_size",
    "repoint",
    "restore_lr_state",
    "scheduled_lr",
    "unsupported_scheduler",
]
