"""When to move to the next phase, and what the optimizer must look like at any depth: pure decisions.

The shell gathers the facts (epoch, the early-stopping signal), asks these functions, and applies the answer.
"""

from __future__ import annotations

import enum

import attrs

from ._records import LRSchedulerInit, OptimizerInit, ResolvedSchedule, phase_rows


class Reason(enum.Enum):
    """Why a phase ended."""

    EPOCH = "max_transition_epoch reached"
    EARLY_STOPPING = "early stopping: the phase converged"


@attrs.frozen
class FitState:
    """The scheduler's state during a fit, saved in checkpoints as plain data.

    Attributes:
        depth: the current phase.
        best_ckpt_depth: the phase during which the best checkpoint so far was saved.
        decided_epoch: the last epoch whose start was decided (``-1``: none yet). A fit resumed from a mid-epoch
            checkpoint starts that epoch again, and must not decide it twice.
    """

    depth: int = 0
    best_ckpt_depth: int = 0
    decided_epoch: int = -1


@attrs.frozen
class Signals:
    """The facts an epoch boundary decision needs.

    Attributes:
        epoch: the epoch about to start.
        es_phase_complete: early stopping judged the current phase converged.
        epoch_transitions_only: ignore early stopping; phases end by epoch only.
    """

    epoch: int
    es_phase_complete: bool = False
    epoch_transitions_only: bool = False


@attrs.frozen
class Transition:
    """A decision to move one phase deeper.

    Attributes:
        to_depth: the phase to enter.
        reason: why the previous phase ended.
    """

    to_depth: int
    reason: Reason


def decided(state: FitState, epoch: int) -> FitState:
    """The state after the start of ``epoch`` has been decided (whether or not a phase began).

    >>> decided(FitState(depth=1), 4)
    FitState(depth=1, best_ckpt_depth=0, decided_epoch=4)
    """
    return attrs.evolve(state, decided_epoch=max(state.decided_epoch, epoch))


def depth_remaining(state: FitState, resolved: ResolvedSchedule) -> int:
    """How many phases are left to enter.

    >>> from ._records import ResolvedPhase, Schedule
    >>> rs = ResolvedSchedule((ResolvedPhase(("a",), -1, None),) * 3, 2, -1, (), (), Schedule(()))
    >>> depth_remaining(FitState(depth=1), rs)
    1
    """
    return max(resolved.max_depth - state.depth, 0)


def next_transition(state: FitState, resolved: ResolvedSchedule, signals: Signals) -> Transition | None:
    """Decide, at the start of an epoch, whether to enter the next phase (at most one phase per epoch).

    The phase ends when the epoch reaches its ``max_transition_epoch`` or, unless ``epoch_transitions_only``,
    when early stopping judged it converged. In the final phase nothing transitions: early stopping or
    ``max_epochs`` end the run. An epoch already decided (``state.decided_epoch``) is not decided again.

    >>> from ._records import ResolvedPhase, Schedule
    >>> rs = ResolvedSchedule((ResolvedPhase(("a",), 3, None), ResolvedPhase(("b",), -1, 1e-5)), 1, 3, (), (),
    ...                       Schedule(()))
    >>> next_transition(FitState(), rs, Signals(epoch=2)) is None
    True
    >>> next_transition(FitState(), rs, Signals(epoch=3))
    Transition(to_depth=1, reason=<Reason.EPOCH: 'max_transition_epoch reached'>)
    >>> next_transition(FitState(), rs, Signals(epoch=1, es_phase_complete=True)).reason.name
    'EARLY_STOPPING'
    >>> next_transition(FitState(decided_epoch=3), rs, Signals(epoch=3)) is None
    True
    """
    if depth_remaining(state, resolved) == 0 or signals.epoch <= state.decided_epoch:
        return None
    limit = resolved.phases[state.depth].max_transition_epoch
    if 0 <= limit <= signals.epoch:
        return Transition(state.depth + 1, Reason.EPOCH)
    if signals.es_phase_complete and not signals.epoch_transitions_only:
        return Transition(state.depth + 1, Reason.EARLY_STOPPING)
    return None


@attrs.frozen
class GroupPlan:
    """Parameter group(s) to add for one phase.

    Attributes:
        phase: the phase the parameters belong to.
        names: the parameters to put in the group(s).
        lr: their learning rate.
    """

    phase: int
    names: tuple[str, ...]
    lr: float


@attrs.frozen
class ImplicitReinit:
    """FTS's implicit-mode reinitialisation (``reinit_optim_cfg`` / ``reinit_lr_cfg``), applied at every phase > 0;
    the optimizer directive takes precedence over a phase's own ``new_optimizer``, as in FTS.

    Attributes:
        optimizer: the optimizer to build at every phase > 0.
        lr_scheduler: the LR scheduler to build at every phase > 0.
    """

    optimizer: OptimizerInit | None = None
    lr_scheduler: LRSchedulerInit | None = None


@attrs.frozen
class Reinit:
    """What a phase reinitialises when it begins.

    Attributes:
        optimizer: build this optimizer (phase 0's groups, then every later phase's, are added to it).
        lr_scheduler: then build this LR scheduler on the optimizer.
    """

    optimizer: OptimizerInit | None = None
    lr_scheduler: LRSchedulerInit | None = None


def depths_with_lr_scheduler(resolved: ResolvedSchedule, implicit: ImplicitReinit = ImplicitReinit()) -> list[int]:
    """The phases up to ``max_depth`` that build an LR scheduler when entered (every phase > 0 with an implicit
    one); found from the written phases' columns, not a record per phase (a generated schedule has 50k).

    >>> from ._records import ClassInit, ResolvedPhase, Schedule
    >>> step = LRSchedulerInit(ClassInit("torch.optim.lr_scheduler.StepLR", {"step_size": 1}))
    >>> phases = (ResolvedPhase(("a",), -1, None), ResolvedPhase(("b",), -1, 1e-4, new_lr_scheduler=step),
    ...           ResolvedPhase(("c",), -1, 1e-4))
    >>> rs = ResolvedSchedule(phases, 2, -1, (), (), Schedule(()))
    >>> depths_with_lr_scheduler(rs), depths_with_lr_scheduler(rs, ImplicitReinit(lr_scheduler=step))
    ([1], [1, 2])
    """
    depths = range(1, resolved.max_depth + 1)
    if implicit.lr_scheduler is not None:
        return list(depths)
    blocks = [phase.new_lr_scheduler for _, _, _, phase in phase_rows(resolved.phases)]
    return [depth for depth in depths if blocks[depth] is not None]


def reinit_at(resolved: ResolvedSchedule, depth: int, implicit: ImplicitReinit = ImplicitReinit()) -> Reinit:
    """What entering phase ``depth`` reinitialises (nothing for phase 0, which uses ``configure_optimizers``).

    >>> from ._records import ClassInit, ResolvedPhase, Schedule
    >>> adam = OptimizerInit(ClassInit("torch.optim.Adam"))
    >>> phases = (ResolvedPhase(("a",), -1, None), ResolvedPhase(("b",), -1, 1e-4, new_optimizer=adam))
    >>> rs = ResolvedSchedule(phases, 1, -1, (), (), Schedule(()))
    >>> reinit_at(rs, 1).optimizer.optimizer_init.class_path, reinit_at(rs, 0)
    ('torch.optim.Adam', Reinit(optimizer=None, lr_scheduler=None))
    """
    if depth <= 0:
        return Reinit()
    phase = resolved.phases[depth]
    return Reinit(implicit.optimizer or phase.new_optimizer, implicit.lr_scheduler or phase.new_lr_scheduler)


def reinit_through(resolved: ResolvedSchedule, depth: int, implicit: ImplicitReinit = ImplicitReinit()) -> Reinit:
    """The optimizer and LR scheduler in use at ``depth``: the latest of each reinitialised at phases ``1..depth``
    (``None``: still the one from ``configure_optimizers``). What a resumed fit must rebuild.

    >>> from ._records import ClassInit, ResolvedPhase, Schedule
    >>> adam = OptimizerInit(ClassInit("torch.optim.Adam"))
    >>> phases = (ResolvedPhase(("a",), -1, None), ResolvedPhase(("b",), -1, 1e-4, new_optimizer=adam),
    ...           ResolvedPhase(("c",), -1, 1e-5))
    >>> rs = ResolvedSchedule(phases, 2, -1, (), (), Schedule(()))
    >>> reinit_through(rs, 2).optimizer == adam, reinit_through(rs, 0).optimizer
    (True, None)
    """
    found = Reinit()
    for phase in range(1, depth + 1):
        here = reinit_at(resolved, phase, implicit)
        found = Reinit(here.optimizer or found.optimizer, here.lr_scheduler or found.lr_scheduler)
    return found


@attrs.frozen
class Plan:
    """What the optimizer and model must become to stand at ``depth``.

    Attributes:
        depth: the depth to reach.
        keep_through: keep the optimizer groups of phases ``0..keep_through`` (drop later ones first); ``-1`` when
            the optimizer is rebuilt (``new_optimizer``).
        restore_best: reload the best checkpoint's weights (and optimizer state, unless the optimizer is rebuilt)
            before adding groups.
        add: groups to add, in phase order.
        thaw: every parameter that must be trainable at ``depth``.
        new_optimizer: build this optimizer from phase 0's parameters first (then ``add`` goes to it).
        new_lr_scheduler: build this LR scheduler once the groups are in place.
    """

    depth: int
    keep_through: int
    restore_best: bool
    add: tuple[GroupPlan, ...]
    thaw: tuple[str, ...]
    new_optimizer: OptimizerInit | None = None
    new_lr_scheduler: LRSchedulerInit | None = None


def _groups(resolved: ResolvedSchedule, first: int, last: int) -> tuple[GroupPlan, ...]:
    return tuple(
        GroupPlan(phase, resolved.phases[phase].names, resolved.phases[phase].lr or 0.0)
        for phase in range(first, last + 1)
    )


def _kept_through(state: FitState, depth: int, restore_best: bool, reinit: Reinit) -> int:
    if reinit.optimizer is not None:
        return -1  # a new optimizer: every group is built again
    return min(state.best_ckpt_depth, depth - 1) if restore_best else depth - 1


def transition_plan(
    state: FitState,
    resolved: ResolvedSchedule,
    transition: Transition,
    restore_best: bool,
    implicit: ImplicitReinit = ImplicitReinit(),
) -> Plan:
    """The plan for entering ``transition.to_depth``.

    With ``restore_best`` the best checkpoint (saved at ``state.best_ckpt_depth``) is reloaded first, so the
    groups after that depth are dropped and added again, as FTS does. A phase that reinitialises the optimizer
    rebuilds every group (phase 0's in the new optimizer, then phases ``1..depth``).

    >>> from ._records import ResolvedPhase, Schedule
    >>> phases = (ResolvedPhase(("a",), -1, None), ResolvedPhase(("b",), -1, 1e-4), ResolvedPhase(("c",), -1, 1e-5))
    >>> rs = ResolvedSchedule(phases, 2, -1, (), (), Schedule(()))
    >>> plan = transition_plan(FitState(depth=1), rs, Transition(2, Reason.EPOCH), restore_best=True)
    >>> plan.keep_through, [g.phase for g in plan.add], plan.thaw
    (0, [1, 2], ('a', 'b', 'c'))
    """
    depth = transition.to_depth
    reinit = reinit_at(resolved, depth, implicit)
    keep = _kept_through(state, depth, restore_best, reinit)
    groups = _groups(resolved, max(keep + 1, 1), depth)
    names = resolved.names_through(depth)
    return Plan(depth, keep, restore_best, groups, names, reinit.optimizer, reinit.lr_scheduler)


def resume_plan(state: FitState, resolved: ResolvedSchedule, implicit: ImplicitReinit = ImplicitReinit()) -> Plan:
    """The plan that rebuilds, on a fresh phase-0 optimizer, the groups a checkpoint saved at ``state.depth`` has.

    Groups are added in phase order exactly as the uninterrupted run added them, so the checkpoint's optimizer and
    LR-scheduler state load onto the same structure; the optimizer and scheduler in use at that depth (the latest
    reinitialised ones) are rebuilt first.

    >>> from ._records import ResolvedPhase, Schedule
    >>> phases = (ResolvedPhase(("a",), -1, None), ResolvedPhase(("b",), -1, 1e-4))
    >>> resume_plan(FitState(depth=1), ResolvedSchedule(phases, 1, -1, (), (), Schedule(()))).add
    (GroupPlan(phase=1, names=('b',), lr=0.0001),)
    """
    depth = min(state.depth, len(resolved.phases) - 1)
    reinit = reinit_through(resolved, depth, implicit)
    keep = -1 if reinit.optimizer is not None else 0
    names = resolved.names_through(depth)
    return Plan(depth, keep, False, _groups(resolved, 1, depth), names, reinit.optimizer, reinit.lr_scheduler)


def effective_max_epochs(resolved: ResolvedSchedule, max_epochs: int) -> int:
    """FTS rule: a ``max_transition_epoch`` on the final phase extends ``max_epochs`` to the schedule's watermark.

    >>> from ._records import ResolvedPhase, Schedule
    >>> rs = ResolvedSchedule((ResolvedPhase(("a",), 2, None), ResolvedPhase(("b",), 8, 1e-5)), 1, 8, (), (),
    ...                       Schedule(()))
    >>> effective_max_epochs(rs, 5)
    8
    """
    final = resolved.phases[-1].max_transition_epoch
    return max(resolved.epoch_watermark, max_epochs) if final >= 0 else max_epochs
