"""The constructor arguments of the scheduler callback: their types, defaults and checks, in one place.

Every argument is checked when the callback is built, so a wrong type or value is one clear error at construction
(naming the argument, what it got and what it accepts), never a ``TypeError`` from inside a fit.
"""

from __future__ import annotations

import copy
import datetime
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..engine import (
    BOOL,
    CLASS_PREFIXES,
    OPTIONAL_BOOL,
    OPTIONAL_PATH,
    OPTIONAL_STR,
    STR,
    Accepts,
    ArgumentError,
    check_arguments,
    integer,
    number,
    one_of,
    optional_mapping,
    positive_number,
)

log = logging.getLogger("lightning.pytorch.callbacks.finetuning_scheduler")


def _is_level(value: object) -> bool:
    if isinstance(value, str):
        return isinstance(logging.getLevelName(value), int)  # a registered level name
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


ACCEPTED: dict[str, Accepts] = {
    "ft_schedule": Accepts(
        "None, a path to a YAML schedule (str or os.PathLike) or a dict of phases",
        lambda v: v is None or isinstance(v, str | os.PathLike | Mapping),
    ),
    "max_depth": integer(-1),
    "base_max_lr": positive_number(),
    "restore_best": BOOL,
    "gen_ft_sched_only": BOOL,
    "epoch_transitions_only": BOOL,
    "reinit_optim_cfg": optional_mapping(),
    "reinit_lr_cfg": optional_mapping(),
    "strategy_adapter_cfg": optional_mapping(),
    "custom_strategy_adapters": Accepts(
        "None or a dict of Lightning strategy flag (str) to adapter reference (str)",
        lambda v: v is None or (isinstance(v, Mapping) and all(isinstance(x, str) for kv in v.items() for x in kv)),
    ),
    "allow_untested": BOOL,
    "apply_lambdas_new_pgs": BOOL,
    "logging_level": Accepts("a logging level (an int >= 0, or a name such as 'INFO')", lambda v: _is_level(v)),
    "enforce_phase0_params": BOOL,
    "frozen_bn_track_running_stats": BOOL,
    "log_dir": OPTIONAL_PATH,
    "accept_changed_schedule": BOOL,
    "allowed_class_prefixes": CLASS_PREFIXES,
}


def _optional(accepts: Accepts) -> Accepts:
    return Accepts(f"None or {accepts.description}", lambda v: v is None or accepts.test(v))


EARLY_STOPPING: dict[str, Accepts] = {
    "monitor": STR,
    "min_delta": number(),
    "patience": integer(0),
    "verbose": BOOL,
    "mode": one_of("min", "max"),
    "strict": BOOL,
    "check_finite": BOOL,
    "stopping_threshold": _optional(number()),
    "divergence_threshold": _optional(number()),
    "check_on_train_epoch_end": OPTIONAL_BOOL,
    "log_rank_zero_only": BOOL,
}

CHECKPOINT: dict[str, Accepts] = {
    "dirpath": OPTIONAL_PATH,
    "filename": OPTIONAL_STR,
    "monitor": OPTIONAL_STR,
    "verbose": BOOL,
    "save_last": Accepts("None, True, False or 'link'", lambda v: v is None or isinstance(v, bool) or v == "link"),
    "save_top_k": integer(-1),
    "save_on_exception": BOOL,
    "save_weights_only": BOOL,
    "mode": one_of("min", "max"),
    "auto_insert_metric_name": BOOL,
    "every_n_train_steps": _optional(integer(0)),
    "train_time_interval": Accepts(
        "None or a datetime.timedelta", lambda v: v is None or isinstance(v, datetime.timedelta)
    ),
    "every_n_epochs": _optional(integer(0)),
    "save_on_train_epoch_end": OPTIONAL_BOOL,
    "enable_version_counter": BOOL,
}


def check_lightning_arguments(
    owner: str,
    parent_init: Callable[..., None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    accepted: dict[str, Accepts],
) -> None:
    """Bind the arguments to the Lightning parent's ``__init__`` (an unknown or doubled name is one clear error)
    and check the values of those it takes (names this Lightning version does not have are not checked).

    >>> def parent(self, monitor: str, patience: int = 3): ...
    >>> check_lightning_arguments("ES", parent, ("val_loss",), {"patience": 2}, EARLY_STOPPING)
    >>> check_lightning_arguments("ES", parent, (), {"monitor": "m", "patience": "2"}, EARLY_STOPPING)
    Traceback (most recent call last):
    ...
    finetuning_scheduler.shell.engine._arguments.ArgumentError: ES: 1 invalid argument:
      - patience must be an int >= 0, got '2' (str)
    """
    signature = inspect.signature(parent_init)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as exc:
        known = ", ".join(name for name in signature.parameters if name != "self")
        raise ArgumentError(owner, [f"{exc}; it takes: {known}"]) from None
    values = {name: value for name, value in bound.arguments.items() if name != "self"}
    check_arguments(
        owner, values, {name: accepts for name, accepts in accepted.items() if name in signature.parameters}
    )


class SchedulerArguments:
    """The constructor arguments of :class:`FinetuningScheduler`, checked when given (FTS's names and defaults).

    Args:
        ft_schedule: a schedule YAML path or dict; ``None`` generates the default (implicit) schedule.
        max_depth: the deepest phase to run (``-1``: the whole schedule).
        base_max_lr: the learning rate of phases > 0 that give none.
        restore_best: reload the best checkpoint before entering each new phase.
        gen_ft_sched_only: write the default schedule to ``log_dir`` and exit.
        epoch_transitions_only: phases end by ``max_transition_epoch`` only (no early stopping).
        reinit_optim_cfg: implicit mode: ``{optimizer_init: {class_path, init_args}}``, the optimizer every phase > 0
            starts with (it takes precedence over a phase's own ``new_optimizer``).
        reinit_lr_cfg: implicit mode: ``{lr_scheduler_init: {...}, pl_lrs_cfg: {...}, use_current_optimizer_pg_lrs}``,
            the LR scheduler every phase > 0 starts with (not with an explicit ``ft_schedule``).
        strategy_adapter_cfg: keyword arguments for the strategy adapter.
        custom_strategy_adapters: Lightning strategy flag to adapter reference.
        allow_untested: allow strategies and LR schedulers that were not tested with the scheduler.
        apply_lambdas_new_pgs: scale new groups' lr by the scheduler's last lambda.
        logging_level: level of this callback's logger.
        enforce_phase0_params: rebuild the optimizer from phase 0 when ``configure_optimizers`` disagrees.
        frozen_bn_track_running_stats: frozen BatchNorm layers keep tracking running statistics.
        log_dir: where the schedule files go (default: ``trainer.log_dir``, then ``default_root_dir``).
        accept_changed_schedule: resume a checkpoint whose fingerprint says it was trained with another schedule
            (a warning says which phases changed); a checkpoint from another model is always refused.
        allowed_class_prefixes: the modules a ``class_path`` of a reinitialisation block (or of ``reinit_optim_cfg``
            / ``reinit_lr_cfg``) may come from, e.g. ``["torch.optim", "mypackage.optim"]``. Importing a class runs
            its module's code, so a schedule from elsewhere is code; with this set, a class outside these modules is
            an error at setup and is never imported. ``None`` (the default, as in FTS) allows any module.
    """

    def __init__(
        self,
        ft_schedule: str | os.PathLike[str] | dict[Any, Any] | None = None,
        max_depth: int = -1,
        base_max_lr: float = 1e-5,
        restore_best: bool = True,
        gen_ft_sched_only: bool = False,
        epoch_transitions_only: bool = False,
        reinit_optim_cfg: dict[str, Any] | None = None,
        reinit_lr_cfg: dict[str, Any] | None = None,
        strategy_adapter_cfg: dict[str, Any] | None = None,
        custom_strategy_adapters: dict[str, str] | None = None,
        allow_untested: bool = False,
        apply_lambdas_new_pgs: bool = False,
        logging_level: int = logging.INFO,
        enforce_phase0_params: bool = True,
        frozen_bn_track_running_stats: bool = True,
        log_dir: str | os.PathLike[str] | None = None,
        accept_changed_schedule: bool = False,
        allowed_class_prefixes: Sequence[str] | None = None,
    ) -> None:
        check_arguments("FinetuningScheduler", locals(), ACCEPTED)
        # A private deep copy: the caller's dict is never mutated (FTS rewrites it in place).
        self.ft_schedule = copy.deepcopy(ft_schedule) if isinstance(ft_schedule, Mapping) else ft_schedule
        self.max_depth = max_depth
        self.base_max_lr = base_max_lr
        self.restore_best = restore_best
        self.gen_ft_sched_only = gen_ft_sched_only
        self.epoch_transitions_only = epoch_transitions_only
        self.reinit_optim_cfg = reinit_optim_cfg
        self.reinit_lr_cfg = reinit_lr_cfg
        self.strategy_adapter_cfg = dict(strategy_adapter_cfg or {})
        self.custom_strategy_adapters = custom_strategy_adapters
        self.allow_untested = allow_untested
        self.apply_lambdas_new_pgs = apply_lambdas_new_pgs
        self.logging_level = logging_level
        self.enforce_phase0_params = enforce_phase0_params
        self.frozen_bn_track_running_stats = frozen_bn_track_running_stats
        self._log_dir = log_dir
        self.accept_changed_schedule = accept_changed_schedule
        self.allowed_class_prefixes = None if allowed_class_prefixes is None else tuple(allowed_class_prefixes)
        log.setLevel(logging_level)
        self._fresh_state()

    def _fresh_state(self) -> None:
        """The state of a fit, before any (defined by the callback)."""

    _ft_schedule: Any = None
    _ft_schedule_resolved: bool = False  # ft_schedule is to be read from the resolved schedule

    @property
    def ft_schedule(self) -> Any:
        """The schedule given (a path, a dict or ``None``); once set up, as in FTS, the resolved schedule as a dict
        (names expanded, defaults applied), built when first read: a generated 50k-phase schedule held as a
        second copy in plain data made every garbage collection of the fit slower."""
        if self._ft_schedule_resolved:
            self._ft_schedule, self._ft_schedule_resolved = self.ft_schedule_dict(), False
        return self._ft_schedule

    @ft_schedule.setter
    def ft_schedule(self, value: Any) -> None:
        self._ft_schedule = value
        self._ft_schedule_resolved = False

    def _ft_schedule_from_resolved(self) -> None:
        """From now on :attr:`ft_schedule` reads the resolved schedule (:meth:`ft_schedule_dict`)."""
        self._ft_schedule_resolved = True

    def ft_schedule_dict(self) -> dict[int, Any]:
        """The resolved schedule as plain data (defined by the callback)."""
        raise NotImplementedError


__all__ = ["ACCEPTED", "CHECKPOINT", "EARLY_STOPPING", "SchedulerArguments", "check_lightning_arguments"]
