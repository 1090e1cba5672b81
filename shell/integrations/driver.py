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
parameter groups the checkpoint's optimizer had, so its state loads onto the same structure (with a schedule that
reinitialises them, save and load ``driver.optimizer`` and ``driver.schedulers``).

Restoring the best checkpoint before each phase (``restore_best`` in the Lightning callback) is not offered: the
driver owns no checkpoint. Phases always continue from the latest weights.

A phase with ``new_optimizer`` / ``new_lr_scheduler`` builds a new optimizer / LR scheduler: from then on step
``driver.optimizer`` and ``driver.schedulers`` (your own variables still point at the previous ones).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from returns.pipeline import is_successful
from returns.result import Result
from torch import nn

from finetuning_scheduler.core import (
    Diagnostics,
    GenerationPolicy,
    ParamInventory,
    RawSchedule,
    Reason,
    ResolvedSchedule,
    Schedule,
    UnscheduledPolicy,
    ValidationOptions,
    effective_max_epochs,
    errors_only,
    generate,
    resolve_schedule,
    schedule_to_data,
)

from ..engine import (
    BOOL,
    CLASS_PREFIXES,
    STATE_FORMAT,
    Accepts,
    EpochTrace,
    GroupPolicy,
    NoDecay,
    PhaseChange,
    PhaseEngine,
    ScheduleError,
    ScheduleWarning,
    check_arguments,
    collector_paused,
    integer,
    inventory,
    number,
    optimizer_problems,
    positive_number,
    raw_reinit_problems,
    read_schedule,
    reinit_problems,
    write_schedule,
)
from ._wrappers import unwrap_module, unwrap_optimizer

ScheduleSource = str | os.PathLike[str] | Mapping[Any, Any] | Schedule | None
"""A schedule as a YAML path, a dict in the FTS format, a :class:`Schedule` record, or ``None`` (generate one)."""


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


_DRIVER_ARGUMENTS = {
    "module": Accepts("a torch.nn.Module", lambda v: isinstance(v, nn.Module)),
    "schedule": Accepts(
        "None, a Schedule, a dict of phases or a path to a YAML schedule",
        lambda v: v is None or isinstance(v, Schedule | Mapping | str | os.PathLike),
    ),
    "max_depth": integer(-1),
    "base_max_lr": positive_number(),
    "epoch_transitions_only": BOOL,
    "unscheduled": Accepts("an UnscheduledPolicy", lambda v: isinstance(v, UnscheduledPolicy)),
    "generation": Accepts("a GenerationPolicy", lambda v: isinstance(v, GenerationPolicy)),
    "no_decay": Accepts(
        "None, a list of name substrings or a callable(name) -> bool",
        lambda v: v is None or callable(v) or (isinstance(v, list | tuple) and all(isinstance(s, str) for s in v)),
    ),
    "weight_decay": Accepts("None or a finite number >= 0", lambda v: v is None or number(0).test(v)),
    "apply_lambdas": BOOL,
    "frozen_bn_track_running_stats": BOOL,
    "reinit": BOOL,
    "allowed_class_prefixes": CLASS_PREFIXES,
}


def _resolve(
    source: ScheduleSource, names: ParamInventory, options: ValidationOptions, policy: GenerationPolicy
) -> Result[ResolvedSchedule, Diagnostics]:
    with collector_paused():  # many small acyclic records: the collector would only slow this down
        if source is None:
            source = generate(names, policy)
        if isinstance(source, Schedule):
            return resolve_schedule(RawSchedule.of(source), names, options)  # no structuring again
        if isinstance(source, Mapping):
            return resolve_schedule(source, names, options)
        return read_schedule(source).bind(lambda raw: resolve_schedule(raw, names, options))


def _reinit_errors(source: ScheduleSource, allowed_prefixes: Sequence[str] | None) -> Diagnostics:
    """The reinitialisation blocks' class problems of a schedule that did not validate, as far as it can be read."""
    if source is None:
        return ()
    if isinstance(source, Schedule | Mapping):
        raw: RawSchedule | Mapping[Any, Any] = schedule_to_data(source) if isinstance(source, Schedule) else source
    else:
        read = read_schedule(source)
        if not is_successful(read):
            return ()
        raw = read.unwrap()
    return errors_only(raw_reinit_problems(raw, uses_pl_lrs_cfg=False, allowed_prefixes=allowed_prefixes))


class ScheduleDriver:
    """Fine-tune a module in phases from any training loop: the core decides, the phase engine applies.

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
        reinit: carry out the schedule's ``new_optimizer`` / ``new_lr_scheduler`` blocks (your loop then steps
            :attr:`optimizer` and :attr:`schedulers`); ``False`` rejects them, for trainers that own their optimizer.
        allowed_class_prefixes: the modules a reinitialisation block's ``class_path`` may come from (``None``: any).
            Importing a class runs its module's code; a class outside these is an error and is never imported.

    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> driver = ScheduleDriver(model, {0: {"params": ["1.*"], "max_transition_epoch": 2}, 1: {"params": ["0.*"]}})
    >>> driver.attach(torch.optim.SGD(driver.trainable_parameters(), lr=0.1))
    >>> [driver.epoch_start(epoch).depth for epoch in range(4)], driver.trace(3).groups
    ([0, 0, 1, 1], (('1.weight', '1.bias'), ('0.weight', '0.bias')))
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
        reinit: bool = True,
        allowed_class_prefixes: Sequence[str] | None = None,
    ) -> None:
        check_arguments("ScheduleDriver", locals(), _DRIVER_ARGUMENTS)
        self.module = unwrap_module(module)
        self.epoch_transitions_only = epoch_transitions_only
        options = ValidationOptions(
            base_max_lr, epoch_transitions_only, max_depth, unscheduled, reinit_supported=reinit
        )
        self._allowed_class_prefixes = allowed_class_prefixes
        self.resolved = self._validate(schedule, options, generation)
        self.engine = PhaseEngine(
            self.module,
            self.resolved,
            groups=GroupPolicy(no_decay, weight_decay, apply_lambdas),
            bn_track_running_stats=frozen_bn_track_running_stats,
        )
        self._silent_phases_warned: set[int] = set()
        self.engine.start()

    def _validate(
        self, source: ScheduleSource, options: ValidationOptions, policy: GenerationPolicy
    ) -> ResolvedSchedule:
        outcome = _resolve(source, inventory(self.module), options, policy)
        if not is_successful(outcome):  # the reinitialisation classes are reported with the other errors
            raise ScheduleError(outcome.failure() + _reinit_errors(source, self._allowed_class_prefixes))
        resolved = outcome.unwrap()
        # The classes of new_optimizer / new_lr_scheduler, imported and tried; pl_lrs_cfg is Lightning's, not read here.
        found = reinit_problems(resolved, uses_pl_lrs_cfg=False, allowed_prefixes=self._allowed_class_prefixes)
        if errors_only(found):
            raise ScheduleError(errors_only(found))
        for diagnostic in (*resolved.warnings, *found):
            warnings.warn(diagnostic.render(), ScheduleWarning, stacklevel=3)
        return resolved

    # -- state ---------------------------------------------------------------------------------------------------

    @property
    def curr_depth(self) -> int:
        """The current phase."""
        return self.engine.depth

    @property
    def max_depth(self) -> int:
        """The deepest phase that will run."""
        return self.resolved.max_depth

    @property
    def depth_remaining(self) -> int:
        """Phases left to enter."""
        return self.engine.depth_remaining

    @property
    def in_final_phase(self) -> bool:
        """No phase is left: a converged phase now means the run is done (stop training)."""
        return self.depth_remaining == 0

    @property
    def history(self) -> list[PhaseChange]:
        """The phase changes so far (a resumed driver includes those before its checkpoint)."""
        return self.engine.history

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The optimizer to step: the attached one, or the one a phase's ``new_optimizer`` built (``None`` before
        :meth:`attach`). After a reinitialising phase, step this one (and :attr:`schedulers`), not your old ones."""
        return self.engine.optimizer

    @property
    def schedulers(self) -> tuple[Any, ...]:
        """The LR schedulers to step: the attached ones, or the one a phase's ``new_lr_scheduler`` built."""
        return self.engine.schedulers

    @property
    def no_decay(self) -> NoDecay:
        """Which parameters of later phases get no weight decay (settable until their phase begins)."""
        return self.engine.groups.no_decay

    @no_decay.setter
    def no_decay(self, value: NoDecay) -> None:
        self.engine.groups = attrs.evolve(self.engine.groups, no_decay=value)

    @property
    def weight_decay(self) -> float | None:
        """The weight decay of later phases' decay groups (settable until their phase begins)."""
        return self.engine.groups.weight_decay

    @weight_decay.setter
    def weight_decay(self, value: float | None) -> None:
        self.engine.groups = attrs.evolve(self.engine.groups, weight_decay=value)

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
        self.engine.attach(candidate, [getattr(s, "scheduler", s) for s in schedulers])  # Accelerate wraps them
        mismatched_lrs = self.engine.init_pg_lrs_problems()
        if mismatched_lrs:
            raise ScheduleError(mismatched_lrs)
        self.engine.resume_pending()

    # -- epochs --------------------------------------------------------------------------------------------------

    def epoch_start(self, epoch: int, *, phase_converged: bool | None = None) -> EpochTrace:
        """Call at the start of every epoch: enters the next phase if the core says so (at most one per epoch).

        Args:
            epoch: the epoch about to be trained (0-based, as Lightning counts).
            phase_converged: your early-stopping signal: the current phase stopped improving. Ignored with
                ``epoch_transitions_only``. In the final phase (:attr:`in_final_phase`) it means: stop training.
                Not given (``None``): this loop has no such signal, so only ``max_transition_epoch`` ends phases
                (a phase without one is then the last phase this run enters, which a warning says).

        Returns:
            The trace of this epoch (calling again for the same epoch changes nothing and returns it again).
        """
        self.engine.require_optimizer()
        if phase_converged is None:
            self._warn_if_phase_never_ends()
        self.engine.epoch_start(
            epoch, phase_converged=bool(phase_converged), epoch_transitions_only=self.epoch_transitions_only
        )
        return self.trace(epoch, self.engine.reason_at(epoch))

    def _warn_if_phase_never_ends(self) -> None:
        depth = self.curr_depth
        if self.in_final_phase or self.resolved.phases[depth].max_transition_epoch >= 0:
            return
        if depth not in self._silent_phases_warned:
            self._silent_phases_warned.add(depth)
            warnings.warn(
                f"Phase {depth} has no max_transition_epoch, so only a convergence signal can end it, and "
                f"epoch_start gets none (phase_converged not given): training would stay in phase {depth} for the "
                f"rest of the run and never reach phases {depth + 1}..{self.max_depth}. Pass "
                "phase_converged=... (for example from PhasePlateau), or give the phase a max_transition_epoch.",
                ScheduleWarning,
                stacklevel=3,
            )

    def trace(self, epoch: int, reason: Reason | None = None) -> EpochTrace:
        """A snapshot of the trainable parameters and the optimizer groups (names and lrs)."""
        return self.engine.trace(epoch, reason)

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The driver's state as plain data (safe for ``torch.load(weights_only=True)`` and JSON)."""
        return self.engine.state_dict()

    def load_state_dict(self, state: Mapping[str, Any], accept_changed_schedule: bool = False) -> None:
        """Restore a saved state on a fresh driver: rebuilds the saved phase's groups on the phase-0 optimizer.

        Call it before ``optimizer.load_state_dict`` and ``scheduler.load_state_dict``. Before :meth:`attach`, the
        state is kept and applied by :meth:`attach`. A state saved from another model, or with another schedule
        (unless ``accept_changed_schedule``: then a warning says what changed), is refused with
        :class:`CheckpointMismatchError`.
        """
        if state.get("format") != STATE_FORMAT or "fit_state" not in state:
            raise ValueError(f"Not a ScheduleDriver state (format {STATE_FORMAT} with a 'fit_state'): {sorted(state)}")
        self.engine.load_state_dict(state, accept_changed_schedule)
        if self.engine.optimizer is not None:
            self.engine.resume_pending()


__all__ = [
    "STATE_FORMAT",
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
