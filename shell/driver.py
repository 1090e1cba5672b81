"""Drive a fine-tuning schedule from any training loop: plain PyTorch, Lightning Fabric, Hugging Face Trainer.

No Lightning import here (nor in anything imported from here): the driver needs only torch and the pure core.
It does what the Lightning callback does, minus what belongs to a Trainer (checkpoint files, early stopping,
restoring the best checkpoint), with the training loop in your hands::

    driver = ScheduleDriver(model, "schedule.yaml")        # freezes the model and thaws phase 0
    optimizer = torch.optim.AdamW(driver.trainable_parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    driver.attach(optimizer, [scheduler])
    for epoch in range(driver.max_epochs(10)):
        trace = driver.epoch_start(epoch)                  # enters the next phase when the core says so
        ...                                                # train one epoch, step the scheduler
    torch.save({"driver": driver.state_dict(), "optimizer": optimizer.state_dict(), ...}, "ckpt.pt")

To resume, build the driver, the phase-0 optimizer and the scheduler exactly as above, then call
``driver.load_state_dict(saved["driver"])`` *before* ``optimizer.load_state_dict(...)``: the driver rebuilds the
parameter groups the checkpoint's optimizer had, so its state loads onto the same structure.

Restoring the best checkpoint before each phase (``restore_best`` in the Lightning callback) is not offered: the
driver owns no checkpoint. Phases always continue from the latest weights.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from returns.pipeline import is_successful
from returns.result import Result
from torch import nn

from finetuning_scheduler.core import (
    Diagnostics,
    FitState,
    GenerationPolicy,
    ParamInventory,
    Plan,
    Reason,
    ResolvedSchedule,
    Schedule,
    Signals,
    UnscheduledPolicy,
    ValidationOptions,
    decided,
    depth_remaining,
    effective_max_epochs,
    errors_only,
    generate,
    make_converter,
    next_transition,
    render_all,
    resolve_schedule,
    resume_plan,
    schedule_to_data,
    transition_plan,
)

from .schedule_files import read_schedule, write_schedule
from .torch_helpers import (
    add_param_groups,
    freeze,
    group_names,
    inventory,
    optimizer_problems,
    thaw,
    track_bn_running_stats,
    trainable_names,
)

ScheduleSource = str | os.PathLike[str] | Mapping[Any, Any] | Schedule | None
"""A schedule as a YAML path, a dict in the FTS format, a :class:`Schedule` record, or ``None`` (generate one)."""

NoDecay = Sequence[str] | Callable[[str], bool] | None
"""Which parameters of a new phase get no weight decay: name substrings (FTS's ``no_decay``) or a predicate."""

STATE_FORMAT = 1


class ScheduleError(ValueError):
    """The fine-tuning schedule has problems; ``diagnostics`` holds every one of them (errors and warnings)."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        errors = errors_only(diagnostics)
        others = len(diagnostics) - len(errors)
        noun = "error" if len(errors) == 1 else "errors"
        extra = f" (and {others} warning{'s' * (others != 1)})" if others else ""
        super().__init__(f"The fine-tuning schedule has {len(errors)} {noun}{extra}:\n{render_all(diagnostics)}")
        self.diagnostics = diagnostics


class ScheduleWarning(UserWarning):
    """A schedule warning found during validation (a parameter no phase thaws, an over-matching regex, ...)."""


@attrs.frozen
class PhaseChange:
    """A phase change that happened during training.

    Attributes:
        epoch: the epoch at whose start the new phase began.
        depth: the phase entered.
        reason: why the previous phase ended.
    """

    epoch: int
    depth: int
    reason: Reason


@attrs.frozen
class EpochTrace:
    """What the model and optimizer look like at the start of an epoch, after any phase change (for logs and tests).

    Attributes:
        epoch: the epoch about to be trained.
        depth: the current phase.
        reason: why a new phase began at this epoch; ``None`` when none did.
        trainable: names of the parameters that require gradients.
        groups: the parameter names in each optimizer group, in group order.
        lrs: the learning rate of each optimizer group.
    """

    epoch: int
    depth: int
    reason: Reason | None
    trainable: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    lrs: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for loggers and JSON.

        >>> EpochTrace(3, 1, Reason.EPOCH, ("w",), (("w",),), (0.1,)).as_dict()["reason"]
        'EPOCH'
        """
        data = attrs.asdict(self, recurse=False)
        data["reason"] = None if self.reason is None else self.reason.name
        data.update(trainable=list(self.trainable), groups=[list(g) for g in self.groups], lrs=list(self.lrs))
        return data


class PhasePlateau:
    """Per-phase early stopping for loops without ``FTSEarlyStopping``: feed it a metric after each evaluation.

    ``converged`` becomes true after ``patience`` evaluations in a row without an improvement of more than
    ``min_delta``; pass it to :meth:`ScheduleDriver.epoch_start` as ``phase_converged`` and :meth:`reset` it when
    a new phase begins. In the final phase, a converged plateau means: stop training.

    >>> plateau = PhasePlateau(patience=2)
    >>> [plateau.update(v) for v in (1.0, 0.5, 0.6, 0.7)]
    [False, False, False, True]
    """

    def __init__(self, patience: int = 2, min_delta: float = 0.0, mode: str = "min") -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.reset()

    def reset(self) -> None:
        """Forget the phase's history (call when a new phase begins)."""
        self.best: float | None = None
        self.wait = 0
        self.converged = False

    def update(self, value: float) -> bool:
        """Record one evaluation's metric; returns whether the phase has converged."""
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        self.converged = self.wait >= self.patience
        return self.converged


def unwrap_module(module: nn.Module) -> nn.Module:
    """The user's module inside a Fabric or DDP wrapper (their parameter names carry a wrapper prefix).

    >>> layer = nn.Linear(2, 1); unwrap_module(layer) is layer
    True
    """
    while True:
        inner = getattr(module, "_original_module", None)  # Lightning Fabric's _FabricModule
        if inner is None and isinstance(module, nn.parallel.DistributedDataParallel | nn.DataParallel):
            inner = module.module
        if not isinstance(inner, nn.Module) or inner is module:
            return module
        module = inner


def unwrap_optimizer(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside a Fabric or Accelerate wrapper (both share its ``param_groups`` and ``state``)."""
    inner = getattr(optimizer, "optimizer", None)
    while isinstance(inner, torch.optim.Optimizer) and inner is not optimizer:
        optimizer, inner = inner, getattr(inner, "optimizer", None)
    return optimizer


def _resolve(
    source: ScheduleSource, names: ParamInventory, options: ValidationOptions, policy: GenerationPolicy
) -> Result[ResolvedSchedule, Diagnostics]:
    if source is None:
        source = generate(names, policy)
    if isinstance(source, Schedule):
        return resolve_schedule(schedule_to_data(source), names, options)
    if isinstance(source, Mapping):
        return resolve_schedule(source, names, options)
    return read_schedule(source).bind(lambda raw: resolve_schedule(raw, names, options))


class ScheduleDriver:
    """Fine-tune a module in phases from any training loop: the core decides, the torch helpers apply.

    Construction validates the schedule against the module (raising one :class:`ScheduleError` listing every
    problem), freezes the module and thaws phase 0. Then build the optimizer from :meth:`trainable_parameters`,
    :meth:`attach` it (with its LR schedulers), and call :meth:`epoch_start` at the start of every epoch.

    Args:
        module: the model to fine-tune (unwrapped from a Fabric or DDP wrapper if needed).
        schedule: a YAML path, a dict in the FTS format, a :class:`Schedule`, or ``None`` to generate one.
        max_depth: the deepest phase to run (``-1``: the whole schedule).
        base_max_lr: the learning rate of phases > 0 that give none.
        epoch_transitions_only: phases end by ``max_transition_epoch`` only (every phase must then have one).
        unscheduled: what to do with parameters that no phase thaws.
        generation: how to cut the model into phases when ``schedule`` is ``None`` (FTS's default: two
            parameters per phase, last-registered first).
        no_decay: parameters of later phases that get a second group with ``weight_decay=0`` (name substrings, as
            FTS's ``no_decay`` attribute, or a predicate on the name).
        weight_decay: the weight decay of later phases' decay groups (``None``: the optimizer's default).
        apply_lambdas: scale new groups' lr by the LR scheduler's current lambda (FTS's ``apply_lambdas_new_pgs``).
        frozen_bn_track_running_stats: frozen BatchNorm layers keep tracking running statistics.
    """

    def __init__(
        self,
        module: nn.Module,
        schedule: ScheduleSource = None,
        *,
        max_depth: int = -1,
        base_max_lr: float = 1e-5,
        epoch_transitions_only: bool = False,
        unscheduled: UnscheduledPolicy = UnscheduledPolicy.WARN,
        generation: GenerationPolicy = GenerationPolicy.FTS,
        no_decay: NoDecay = None,
        weight_decay: float | None = None,
        apply_lambdas: bool = False,
        frozen_bn_track_running_stats: bool = True,
    ) -> None:
        self.module = unwrap_module(module)
        self.epoch_transitions_only = epoch_transitions_only
        self.no_decay = no_decay
        self.weight_decay = weight_decay
        self.apply_lambdas = apply_lambdas
        self.frozen_bn_track_running_stats = frozen_bn_track_running_stats
        options = ValidationOptions(base_max_lr, epoch_transitions_only, max_depth, unscheduled, reinit_supported=False)
        self.resolved = self._validate(schedule, options, generation)
        self.optimizer: torch.optim.Optimizer | None = None
        self.schedulers: tuple[Any, ...] = ()
        self.history: list[PhaseChange] = []
        self._state = FitState()
        self._pending: FitState | None = None
        self._converter = make_converter()
        freeze(self.module, frozen_bn_track_running_stats)
        self._thaw_phase(0)

    def _validate(
        self, source: ScheduleSource, options: ValidationOptions, policy: GenerationPolicy
    ) -> ResolvedSchedule:
        outcome = _resolve(source, inventory(self.module), options, policy)
        if not is_successful(outcome):
            raise ScheduleError(outcome.failure())
        resolved = outcome.unwrap()
        for diagnostic in resolved.warnings:
            warnings.warn(diagnostic.render(), ScheduleWarning, stacklevel=3)
        return resolved

    # -- state ---------------------------------------------------------------------------------------------------

    @property
    def curr_depth(self) -> int:
        """The current phase."""
        return self._state.depth

    @property
    def max_depth(self) -> int:
        """The deepest phase that will run."""
        return self.resolved.max_depth

    @property
    def depth_remaining(self) -> int:
        """Phases left to enter."""
        return depth_remaining(self._state, self.resolved)

    @property
    def in_final_phase(self) -> bool:
        """No phase is left: a converged phase now means the run is done (stop training)."""
        return self.depth_remaining == 0

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters that require gradients now: what the phase-0 optimizer must hold."""
        return [param for param in self.module.parameters() if param.requires_grad]

    def max_epochs(self, requested: int) -> int:
        """How many epochs to run: a ``max_transition_epoch`` on the final phase extends ``requested`` (FTS rule)."""
        return effective_max_epochs(self.resolved, requested)

    def schedule_dict(self) -> dict[int, Any]:
        """The resolved schedule as plain data (concrete names, defaults applied)."""
        return self.resolved.as_data()

    def save_schedule(self, path: str | os.PathLike[str]) -> Path:
        """Write the schedule as written (or as generated) to a YAML file, atomically: keep it with your run."""
        return write_schedule(self.resolved.schedule, path)

    # -- the optimizer -------------------------------------------------------------------------------------------

    def attach(self, optimizer: torch.optim.Optimizer, schedulers: Iterable[Any] = ()) -> None:
        """Take the phase-0 optimizer (and its LR schedulers), which later phases extend with new groups.

        The optimizer must hold exactly the trainable parameters (build it from :meth:`trainable_parameters`).
        A state given to :meth:`load_state_dict` before is applied now.
        """
        candidate = unwrap_optimizer(optimizer)
        problems = optimizer_problems(candidate, self.module)
        if problems:
            raise ValueError(
                "The optimizer does not match phase 0 of the schedule:\n  - "
                + "\n  - ".join(problems)
                + "\nBuild it from driver.trainable_parameters() (or filter on requires_grad) after creating the "
                "driver."
            )
        self.optimizer = candidate
        self.schedulers = tuple(getattr(s, "scheduler", s) for s in schedulers)  # Accelerate wraps schedulers too
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._resume(pending)

    def _require_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            raise RuntimeError("ScheduleDriver.attach(optimizer, schedulers) must be called first")
        return self.optimizer

    def _thaw_phase(self, depth: int) -> None:
        names = self.resolved.phases[depth].names
        thaw(self.module, names)
        if not self.frozen_bn_track_running_stats:
            track_bn_running_stats(self.module, names)

    def _add_groups(self, names: Sequence[str], lr: float, name: str, no_decay: Sequence[str] | None) -> int:
        optimizer = self._require_optimizer()
        added = add_param_groups(
            optimizer,
            self.module,
            names,
            lr,
            name=name,
            no_decay=no_decay,
            schedulers=self.schedulers,
            apply_lambdas=self.apply_lambdas,
        )
        if added and self.weight_decay is not None and not name.endswith("/no_decay"):
            optimizer.param_groups[-added]["weight_decay"] = self.weight_decay
        return added

    def _add_phase_groups(self, phase: int, lr: float) -> int:
        names = self.resolved.phases[phase].names
        if not callable(self.no_decay):
            return self._add_groups(names, lr, f"phase{phase}", self.no_decay)
        skip = [n for n in names if self.no_decay(n)]
        added = self._add_groups([n for n in names if not self.no_decay(n)], lr, f"phase{phase}", None)
        if skip and self._add_groups(skip, lr, f"phase{phase}/no_decay", None):
            self._require_optimizer().param_groups[-1]["weight_decay"] = 0.0
            added += 1
        return added

    def _apply(self, plan: Plan) -> None:
        for group in plan.add:
            self._thaw_phase(group.phase)
            if self._add_phase_groups(group.phase, group.lr) == 0:
                warnings.warn(
                    f"Phase {group.phase} thawed no parameter that is not already optimized: no group added.",
                    ScheduleWarning,
                    stacklevel=4,
                )

    # -- epochs --------------------------------------------------------------------------------------------------

    def epoch_start(self, epoch: int, *, phase_converged: bool = False) -> EpochTrace:
        """Call at the start of every epoch: enters the next phase if the core says so (at most one per epoch).

        Args:
            epoch: the epoch about to be trained (0-based, as Lightning counts).
            phase_converged: your early-stopping signal: the current phase stopped improving. Ignored with
                ``epoch_transitions_only``. In the final phase (:attr:`in_final_phase`) it means: stop training.

        Returns:
            The trace of this epoch (calling again for the same epoch changes nothing and returns it again).
        """
        self._require_optimizer()
        reason: Reason | None = None
        signals = Signals(epoch, phase_converged, self.epoch_transitions_only)
        transition = next_transition(self._state, self.resolved, signals)  # None for an epoch already decided
        if transition is not None:
            self._apply(transition_plan(self._state, self.resolved, transition, restore_best=False))
            self._state = attrs.evolve(self._state, depth=transition.to_depth)
            self.history.append(PhaseChange(epoch, transition.to_depth, transition.reason))
        self._state = decided(self._state, epoch)
        if self.history and self.history[-1].epoch == epoch:
            reason = self.history[-1].reason
        return self.trace(epoch, reason)

    def trace(self, epoch: int, reason: Reason | None = None) -> EpochTrace:
        """A snapshot of the trainable parameters and the optimizer groups (names and lrs)."""
        optimizer = self._require_optimizer()
        return EpochTrace(
            epoch,
            self.curr_depth,
            reason,
            trainable_names(self.module),
            tuple(tuple(names) for names in group_names(optimizer, self.module)),
            tuple(float(group["lr"]) for group in optimizer.param_groups),
        )

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The driver's state as plain data (safe for ``torch.load(weights_only=True)`` and JSON)."""
        return {
            "format": STATE_FORMAT,
            "fit_state": self._converter.unstructure(self._state),
            "history": [{"epoch": c.epoch, "depth": c.depth, "reason": c.reason.name} for c in self.history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a saved state on a fresh driver: rebuilds the saved phase's groups on the phase-0 optimizer.

        Call it before ``optimizer.load_state_dict`` and ``scheduler.load_state_dict``. Before :meth:`attach`, the
        state is kept and applied by :meth:`attach`.
        """
        if state.get("format") != STATE_FORMAT or "fit_state" not in state:
            raise ValueError(f"Not a ScheduleDriver state (format {STATE_FORMAT} with a 'fit_state'): {sorted(state)}")
        if self.curr_depth != 0 or self.history:
            raise RuntimeError("load_state_dict needs a fresh driver (still in phase 0, before any epoch_start)")
        restored = self._converter.structure(state["fit_state"], FitState)
        if restored.depth >= len(self.resolved.phases):
            raise ValueError(
                f"The state was saved in phase {restored.depth}, but the schedule has only "
                f"{len(self.resolved.phases)} phases; resume with the schedule it was trained with."
            )
        self.history = [PhaseChange(c["epoch"], c["depth"], Reason[c["reason"]]) for c in state.get("history", [])]
        if self.optimizer is None:
            self._pending = restored
            return
        self._resume(restored)

    def _resume(self, restored: FitState) -> None:
        self._apply(resume_plan(restored, self.resolved))
        self._state = restored
        optimizer = self._require_optimizer()
        problems = optimizer_problems(optimizer, self.module, self.schedulers)
        if problems:
            raise RuntimeError("The rebuilt optimizer is inconsistent:\n  - " + "\n  - ".join(problems))


__all__ = [
    "EpochTrace",
    "NoDecay",
    "PhaseChange",
    "PhasePlateau",
    "ScheduleDriver",
    "ScheduleError",
    "ScheduleSource",
    "ScheduleWarning",
    "unwrap_module",
    "unwrap_optimizer",
]
