"""The phase engine: one implementation of a scheduled fit's effects, for every trainer. No Lightning import.

The core decides (``next_transition``, ``transition_plan``, ``resume_plan``); the engine holds the fit state and
history and applies each decision to the module, the optimizer and its LR schedulers: thawing, param groups (with
the weight-decay split), scheduler state, the BatchNorm policy, restoring the best checkpoint (through a callable
the integration supplies), phase-0 enforcement and resume (fingerprints checked). Integrations (the Lightning
callback, :class:`~finetuning_scheduler.shell.integrations.driver.ScheduleDriver`) only gather facts and call it.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import torch
from torch import nn

from finetuning_scheduler.core import (
    Diagnostics,
    Fingerprint,
    FitState,
    ImplicitReinit,
    LRSchedulerInit,
    OptimizerInit,
    Plan,
    Reason,
    ResolvedSchedule,
    Signals,
    Transition,
    decided,
    depth_remaining,
    fingerprint,
    make_converter,
    next_transition,
    reinit_at,
    reinit_through,
    resume_plan,
    transition_plan,
)

from ._errors import CheckpointMismatchError, RebuiltGroupsMismatchError, ScheduleWarning
from ._fingerprints import check_fingerprint
from ._lr_schedulers import adopt_rebuilt_groups, capture_lr_state, forget_groups, repoint, restore_lr_state
from ._phase0 import Phase0Mismatch, phase0_mismatch
from ._records import EpochTrace, PhaseChange
from ._reinit import build_lr_scheduler, build_optimizer, import_class, init_pg_lrs_problems
from .torch_helpers import (
    add_param_groups,
    freeze,
    group_names,
    optimizer_problems,
    planned_group_count,
    thaw,
    track_bn_running_stats,
    trainable_names,
)

STATE_FORMAT = 1

NoDecay = Sequence[str] | Callable[[str], bool] | None
"""Which parameters of a new phase get no weight decay: name substrings (FTS's ``no_decay``) or a predicate."""

RestoreBest = Callable[[int | None], None]
"""Reload the best checkpoint's weights and optimizer state, keeping the optimizer's first ``n`` param groups
(``None``: the optimizer is about to be replaced, so reload the weights only)."""

Replaced = Callable[[torch.optim.Optimizer, tuple[Any, ...], LRSchedulerInit | None], None]
"""Told the new optimizer and schedulers after a reinitialisation (and the scheduler's spec when it was rebuilt), so
the trainer steps them from now on."""


def _warn(message: str) -> None:
    warnings.warn(message, ScheduleWarning, stacklevel=4)


@attrs.frozen
class GroupPolicy:
    """How a phase's parameters become optimizer param groups.

    Attributes:
        no_decay: parameters that get a second group with ``weight_decay=0``.
        weight_decay: the weight decay of the decay group (``None``: the optimizer's default).
        apply_lambdas: scale a new group's lr by the LR scheduler's current lambda (``apply_lambdas_new_pgs``).
    """

    no_decay: NoDecay = None
    weight_decay: float | None = None
    apply_lambdas: bool = False


class PhaseEngine:
    """A scheduled fit of ``module``: its state, its history, and every change it makes to the model and optimizer.

    Args:
        module: the module whose parameters the schedule names (after ``to_module_names``).
        resolved: the validated schedule.
        to_module_names: schedule names to the module's parameter names (a strategy adapter's translation).
        groups: how new phases' param groups are made.
        bn_track_running_stats: frozen BatchNorm layers keep tracking running statistics; when ``False`` a layer
            tracks them again once its phase is thawed.
        warn: where warnings go (the Lightning callback warns on rank zero only).
        on_thaw: told the phase and the newly thawed module names at every thaw (for logs).
        implicit: FTS's implicit-mode reinitialisation (``reinit_optim_cfg`` / ``reinit_lr_cfg``).
        on_replace: told the new optimizer and schedulers when a phase reinitialises them.

    >>> from finetuning_scheduler.core import resolve_schedule
    >>> from finetuning_scheduler.shell.engine import inventory
    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> schedule = {0: {"params": ["1.*"], "max_transition_epoch": 1}, 1: {"params": ["0.*"], "lr": 0.01}}
    >>> engine = PhaseEngine(model, resolve_schedule(schedule, inventory(model)).unwrap())
    >>> engine.start()  # frozen, then phase 0 thawed
    >>> engine.attach(torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1))
    >>> engine.epoch_start(1, phase_converged=False, epoch_transitions_only=False)
    PhaseChange(epoch=1, depth=1, reason=<Reason.EPOCH: 'max_transition_epoch reached'>, restored_best=False)
    >>> [group["lr"] for group in engine.require_optimizer().param_groups]
    [0.1, 0.01]
    """

    def __init__(
        self,
        module: nn.Module,
        resolved: ResolvedSchedule,
        *,
        to_module_names: Callable[[list[str]], list[str]] = list,
        groups: GroupPolicy = GroupPolicy(),
        bn_track_running_stats: bool = True,
        warn: Callable[[str], None] = _warn,
        on_thaw: Callable[[int, tuple[str, ...]], None] | None = None,
        implicit: ImplicitReinit = ImplicitReinit(),
        on_replace: Replaced | None = None,
    ) -> None:
        self.module, self.resolved = module, resolved
        self.to_module_names, self.groups = to_module_names, groups
        self.bn_track_running_stats, self.warn, self.on_thaw = bn_track_running_stats, warn, on_thaw
        self.implicit, self.on_replace = implicit, on_replace
        self.state = FitState()
        self.history: list[PhaseChange] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedulers: tuple[Any, ...] = ()
        self._pending: FitState | None = None
        self._group_counts: dict[int, int] = {}
        self._attached_class: type = torch.optim.Optimizer  # the class configure_optimizers built (see attach)
        self._converter = make_converter()

    # -- state ---------------------------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """The current phase."""
        return self.state.depth

    @property
    def depth_remaining(self) -> int:
        """Phases left to enter."""
        return depth_remaining(self.state, self.resolved)

    def module_names(self, depth: int) -> list[str]:
        """The module's parameter names of phase ``depth``."""
        return self.to_module_names(list(self.resolved.phases[depth].names))

    def require_optimizer(self) -> torch.optim.Optimizer:
        """The attached optimizer."""
        if self.optimizer is None:
            raise RuntimeError("the phase-0 optimizer must be attached first (ScheduleDriver.attach, or fit start)")
        return self.optimizer

    # -- phase 0 -------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Freeze the module and thaw phase 0: a new fit (state and history start afresh)."""
        self.state, self.history, self._pending, self._group_counts = FitState(), [], None, {}
        freeze(self.module, self.bn_track_running_stats)
        self._thaw(0)

    def attach(self, optimizer: torch.optim.Optimizer, schedulers: Sequence[Any] = ()) -> None:
        """Take the phase-0 optimizer and its LR schedulers; later phases extend them."""
        self.optimizer, self.schedulers = optimizer, tuple(schedulers)
        self._group_counts = {0: len(optimizer.param_groups)}
        self._attached_class = type(optimizer)

    def phase0_mismatch(self) -> Phase0Mismatch | None:
        """How the attached optimizer differs from phase 0 (``None``: it holds exactly phase 0's parameters)."""
        return phase0_mismatch(self.require_optimizer(), self.module, self.module_names(0))

    def rebuild_phase0(self) -> None:
        """Re-freeze the module to phase 0 and rebuild the optimizer's groups from phase 0's parameters, at the
        optimizer's default lr (per-group settings from the user's optimizer are replaced), as FTS does."""
        optimizer = self.require_optimizer()
        original_groups = len(optimizer.param_groups)
        freeze(self.module, self.bn_track_running_stats)  # the user's own requires_grad changes are undone
        self._thaw(0)
        optimizer.param_groups.clear()
        optimizer.state.clear()
        forget_groups(self.schedulers)
        self._add_phase_groups(0, optimizer.defaults["lr"], self.schedulers)
        adopt_rebuilt_groups(self.schedulers, original_groups)

    # -- epochs --------------------------------------------------------------------------------------------------

    def epoch_start(
        self, epoch: int, *, phase_converged: bool, epoch_transitions_only: bool, restore: RestoreBest | None = None
    ) -> PhaseChange | None:
        """Decide the start of ``epoch`` (at most one new phase) and apply it; the change made, if any.

        Args:
            epoch: the epoch about to be trained.
            phase_converged: early stopping judged the current phase converged.
            epoch_transitions_only: phases end by ``max_transition_epoch`` only.
            restore: reload the best checkpoint before entering a new phase (``None``: continue from the latest
                weights).
        """
        transition = next_transition(self.state, self.resolved, Signals(epoch, phase_converged, epoch_transitions_only))
        change = None if transition is None else self._enter(transition, epoch, restore)
        self.state = decided(self.state, epoch)
        return change

    def _enter(self, transition: Transition, epoch: int, restore: RestoreBest | None) -> PhaseChange:
        plan = transition_plan(self.state, self.resolved, transition, restore is not None, self.implicit)
        self.apply(plan, restore)
        self.state = attrs.evolve(self.state, depth=transition.to_depth)
        change = PhaseChange(epoch, transition.to_depth, transition.reason, restore is not None)
        self.history.append(change)
        return change

    def reason_at(self, epoch: int) -> Reason | None:
        """Why a phase began at ``epoch`` (``None``: none did)."""
        return self.history[-1].reason if self.history and self.history[-1].epoch == epoch else None

    def apply(self, plan: Plan, restore: RestoreBest | None = None) -> None:
        """Make the module and optimizer enter ``plan.depth`` (a transition).

        With ``restore``, the best checkpoint is reloaded first, keeping the groups through ``plan.keep_through``
        and adding the later ones again. A new optimizer is built from phase 0's parameters plus every later
        phase's groups. The LR schedule continues (restoring rolls weights back, never the LR trajectory) and the
        target phase's groups join it; a new LR scheduler then takes over all groups."""
        lr_state = capture_lr_state(self.require_optimizer(), self.schedulers)
        restoring = plan.restore_best and restore is not None
        if restore is not None and restoring and plan.new_optimizer is None and self._best_used_another_optimizer():
            saved, in_use = (
                self._optimizer_class_at(d).__name__ for d in (self.state.best_ckpt_depth, self.state.depth)
            )
            self.warn(
                f"The best checkpoint was saved in phase {self.state.best_ckpt_depth} with {saved}, but {in_use} is "
                f"in use: restoring its weights only ({in_use} keeps its groups and state)."
            )
            restore(None)
            restoring, plan = False, attrs.evolve(plan, add=plan.add[-1:])  # the kept groups stay; the phase joins
        if restore is not None and restoring:
            restore(None if plan.new_optimizer is not None else self._groups_through(plan.keep_through))
        if plan.new_optimizer is not None:
            self._replace_optimizer(plan.new_optimizer)
        last = plan.add
        if restoring or plan.new_optimizer is not None:
            for group in plan.add[:-1]:  # their scheduler state comes back with the captured state below
                self._thaw(group.phase)
                self._add_phase_groups(group.phase, group.lr, ())
                again = reinit_at(self.resolved, group.phase, self.implicit).lr_scheduler
                if again is not None:  # as FTS, a re-added phase builds its scheduler again (its init_pg_lrs apply)
                    self._replace_lr_scheduler(again)
            restore_lr_state(self.require_optimizer(), self.schedulers, lr_state)
            last = plan.add[-1:]
        for group in last:
            self._thaw(group.phase)
            self._add_phase_groups(group.phase, group.lr, self.schedulers)
        if plan.new_lr_scheduler is not None:
            self._replace_lr_scheduler(plan.new_lr_scheduler)

    def _rebuild(self, plan: Plan) -> None:
        """Rebuild a resumed fit's optimizer structure at ``plan.depth`` (the saved states are loaded afterwards)."""
        if plan.new_optimizer is not None:
            self._replace_optimizer(plan.new_optimizer)
        for group in plan.add:
            self._thaw(group.phase)
            self._add_phase_groups(group.phase, group.lr, self.schedulers)
        if plan.new_lr_scheduler is not None:
            self._replace_lr_scheduler(plan.new_lr_scheduler)

    def _best_used_another_optimizer(self) -> bool:
        """Whether the best checkpoint's optimizer state is of another class than the optimizer in use (it cannot
        load into it; the same class loads, as in FTS)."""
        return self._optimizer_class_at(self.state.best_ckpt_depth) is not self._optimizer_class_at(self.state.depth)

    def _optimizer_class_at(self, depth: int) -> type:
        spec = reinit_through(self.resolved, depth, self.implicit).optimizer
        return self._attached_class if spec is None else import_class(spec.optimizer_init.class_path)

    def _groups_through(self, depth: int) -> int:
        return sum(self._group_counts.get(phase, 0) for phase in range(depth + 1))

    # -- reinitialisation ----------------------------------------------------------------------------------------

    def _replace_optimizer(self, spec: OptimizerInit) -> None:
        # Built over a placeholder, then given phase 0's groups exactly as a phase adds them (names, no_decay).
        placeholder = nn.Parameter(torch.zeros(1))
        optimizer = build_optimizer(spec, [{"params": [placeholder]}])
        optimizer.param_groups.clear()
        self.optimizer, self._group_counts = optimizer, {}
        self._add_phase_groups(0, optimizer.defaults["lr"], ())
        for scheduler in self.schedulers:
            repoint(scheduler, optimizer)
        if self.on_replace is not None:
            self.on_replace(optimizer, self.schedulers, None)

    def _replace_lr_scheduler(self, spec: LRSchedulerInit) -> None:
        self.schedulers = (build_lr_scheduler(spec, self.require_optimizer()),)
        if self.on_replace is not None:
            self.on_replace(self.require_optimizer(), self.schedulers, spec)

    def init_pg_lrs_problems(self) -> Diagnostics:
        """``init_pg_lrs`` lists whose length is not the number of groups when their scheduler is built."""
        return init_pg_lrs_problems(self.resolved, self.implicit, self._planned_groups_before)

    def _planned_groups_before(self, depth: int) -> int:
        rebuilt = any(reinit_at(self.resolved, d, self.implicit).optimizer for d in range(1, depth + 1))
        phase0 = self._groups_of(0) if rebuilt else self._group_counts.get(0, 0)
        return phase0 + sum(self._groups_of(phase) for phase in range(1, depth))

    def _groups_of(self, phase: int) -> int:
        return planned_group_count(self.module_names(phase), self.groups.no_decay)

    def note_best_checkpoint(self) -> None:
        """The checkpoint being saved now is the best so far: remember its depth (for ``restore_best``)."""
        self.state = attrs.evolve(self.state, best_ckpt_depth=self.state.depth)

    # -- thawing and groups --------------------------------------------------------------------------------------

    def _thaw(self, depth: int) -> None:
        names = self.module_names(depth)
        newly = thaw(self.module, names)
        if not self.bn_track_running_stats:
            track_bn_running_stats(self.module, names)
        if newly and self.on_thaw is not None:
            self.on_thaw(depth, newly)

    def _add_phase_groups(self, phase: int, lr: float, schedulers: Sequence[Any]) -> None:
        names, no_decay = self.module_names(phase), self.groups.no_decay
        if callable(no_decay):
            skip = [name for name in names if no_decay(name)]
            added = self._add_groups([n for n in names if not no_decay(n)], lr, f"phase{phase}", None, schedulers)
            added += self._add_groups(skip, lr, f"phase{phase}/no_decay", None, schedulers, no_decay_group=True)
        else:
            added = self._add_groups(names, lr, f"phase{phase}", no_decay, schedulers)
        self._group_counts[phase] = added
        if added == 0:
            self.warn(f"Phase {phase} thawed no parameter that is not already optimized: no group added.")

    def _add_groups(
        self,
        names: Sequence[str],
        lr: float,
        name: str,
        no_decay: Sequence[str] | None,
        schedulers: Sequence[Any],
        no_decay_group: bool = False,
    ) -> int:
        optimizer = self.require_optimizer()
        apply_lambdas = self.groups.apply_lambdas
        added = add_param_groups(
            optimizer, self.module, names, lr, name=name, no_decay=no_decay, schedulers=schedulers,
            apply_lambdas=apply_lambdas,
        )  # fmt: skip
        if added and no_decay_group:
            optimizer.param_groups[-1]["weight_decay"] = 0.0
        elif added and self.groups.weight_decay is not None:
            optimizer.param_groups[-added]["weight_decay"] = self.groups.weight_decay
        return added

    # -- resume and state ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The fit state and history as plain data (safe for ``torch.load(weights_only=True)`` and JSON)."""
        return {
            "format": STATE_FORMAT,
            "fit_state": self._converter.unstructure(self.state),
            "history": [change.as_data() for change in self.history],
            "fingerprint": self.fingerprint.as_data(),
        }

    @functools.cached_property
    def fingerprint(self) -> Fingerprint:
        """The schedule's and the model's fingerprint, stored in every state (computed once, on first use)."""
        return fingerprint(self.resolved)

    def load_state_dict(self, state: Mapping[str, Any], accept_changed_schedule: bool = False) -> None:
        """Take a saved state (checked against the schedule now); :meth:`resume_pending` applies it once the
        optimizer is attached.

        Raises:
            CheckpointMismatchError: the state was saved from another model, with another schedule (unless
                ``accept_changed_schedule``: then a warning says what changed) or in a phase it does not have.
            RuntimeError: this engine has already entered a phase (resume needs a fresh fit).
        """
        if self.state.depth != 0 or self.history:
            raise RuntimeError("load_state_dict needs a fresh driver or fit (still in phase 0, before any epoch_start)")
        check_fingerprint(state, self.fingerprint, accept_changed_schedule, self.warn)
        restored = self._converter.structure(state["fit_state"], FitState)
        phases = len(self.resolved.phases)
        if restored.depth >= phases:
            raise CheckpointMismatchError(
                f"The checkpoint was saved in phase {restored.depth}, but the schedule has only {phases} phases "
                f"(0..{phases - 1}); resume with the schedule the checkpoint was trained with."
            )
        self.history = [PhaseChange.from_data(change) for change in state.get("history", [])]
        self._pending = restored

    def resume_pending(self, saved_group_sizes: Sequence[int] | None = None) -> FitState | None:
        """Rebuild, on the phase-0 optimizer, the groups of the state given to :meth:`load_state_dict` (if any).

        Groups are added in the order the uninterrupted fit added them, so the saved optimizer and scheduler state
        load onto the same structure; ``saved_group_sizes`` (the saved optimizer's group sizes) are checked too.

        Raises:
            CheckpointMismatchError: the rebuilt optimizer does not match the model or the saved optimizer.
        """
        restored, self._pending = self._pending, None
        if restored is None:
            return None
        self._rebuild(resume_plan(restored, self.resolved, self.implicit))
        self.state = restored
        self._check_rebuilt(saved_group_sizes)
        return restored

    def _check_rebuilt(self, saved_group_sizes: Sequence[int] | None) -> None:
        problems = optimizer_problems(self.require_optimizer(), self.module, self.schedulers, saved_group_sizes)
        if problems:
            raise RebuiltGroupsMismatchError(
                "The checkpoint cannot be matched to the fine-tuning schedule:\n  - "
                + "\n  - ".join(problems)
                + "\nResume with the schedule, max_depth and no_decay the checkpoint was trained with."
            )

    # -- observing -----------------------------------------------------------------------------------------------

    def trace(self, epoch: int, reason: Reason | None = None) -> EpochTrace:
        """A snapshot of the trainable parameters and the optimizer groups (names and lrs)."""
        optimizer = self.require_optimizer()
        return EpochTrace(
            epoch,
            self.depth,
            reason,
            trainable_names(self.module),
            tuple(tuple(names) for names in group_names(optimizer, self.module)),
            tuple(float(group["lr"]) for group in optimizer.param_groups),
        )


__all__ = ["STATE_FORMAT", "GroupPolicy", "NoDecay", "PhaseEngine", "Replaced", "RestoreBest"]
