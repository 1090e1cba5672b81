"""The callbacks a scheduled fit depends on: one FTSEarlyStopping (unless epochs alone drive phases) and one
FTSCheckpoint; plain Lightning ones are replaced by their phase-aware twins with the same settings.
"""

from __future__ import annotations

import inspect
from typing import Any

from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import MisconfigurationException  # type: ignore[attr-defined]
from lightning.pytorch.utilities.rank_zero import rank_zero_warn  # type: ignore[attr-defined]

from ._callbacks import FTSCheckpoint, FTSEarlyStopping
from ._views import SchedulerView, schedulers, trainer_callbacks

_DEFAULT_MONITOR = "val_loss"

_TwinClass = type[FTSEarlyStopping] | type[FTSCheckpoint]


def _settings_of(callback: Callback, base: type) -> dict[str, Any]:
    """The constructor arguments that rebuild ``callback`` (Lightning keeps some under a leading underscore)."""
    settings: dict[str, Any] = {}
    for name in inspect.signature(base).parameters:
        for attribute in (name, f"_{name}"):
            if hasattr(callback, attribute):
                settings[name] = getattr(callback, attribute)
                break
    if isinstance(callback, EarlyStopping):
        # EarlyStopping stores min_delta with the sign of its comparison; undo it so the twin gets the user's value.
        settings["min_delta"] = abs(callback.min_delta)
    return settings


def _only_one(trainer: Trainer, kind: type) -> list[Callback]:
    found = [cb for cb in trainer_callbacks(trainer) if isinstance(cb, kind)]
    if len(found) > 1:
        raise MisconfigurationException(
            f"Use of multiple {kind.__name__} callbacks is not supported with FinetuningScheduler "
            f"({len(found)} given). Please provide a maximum of one."
        )
    return found


def _twin(trainer: Trainer, existing: Callback, twin_cls: _TwinClass, base: type, fts: SchedulerView) -> Callback:
    settings = _settings_of(existing, base)
    if settings.get("monitor") is None:
        rank_zero_warn(f"No monitor metric specified for {twin_cls.__name__}, using '{_DEFAULT_MONITOR}' as default.")
        settings["monitor"] = _DEFAULT_MONITOR
    twin = twin_cls(**settings)
    rank_zero_warn(
        f"FinetuningScheduler needs a phase-aware {base.__name__}: replacing the {type(existing).__name__} with "
        f"{twin_cls.__name__} (same settings)."
    )
    trainer_callbacks(trainer)[trainer_callbacks(trainer).index(existing)] = twin
    twin.setup(trainer, fts.pl_module, "fit")
    return twin


def _ensure(trainer: Trainer, twin_cls: _TwinClass, base: type, fts: SchedulerView) -> None:
    found = _only_one(trainer, base)
    if found and isinstance(found[0], twin_cls):
        if getattr(found[0], "monitor", None) is None and twin_cls is FTSEarlyStopping:
            raise MisconfigurationException("FTSEarlyStopping needs a `monitor`.")
        return
    if found:
        _twin(trainer, found[0], twin_cls, base, fts)
        return
    rank_zero_warn(
        f"FinetuningScheduler needs a {twin_cls.__name__} callback and none was given: adding one with default "
        f"settings (monitor='{_DEFAULT_MONITOR}')."
    )
    added = twin_cls(monitor=_DEFAULT_MONITOR)
    trainer_callbacks(trainer).insert(_before_checkpoints(trainer), added)
    added.setup(trainer, fts.pl_module, "fit")


def _before_checkpoints(trainer: Trainer) -> int:
    """Where a new callback goes: before the checkpoint callbacks, which Lightning keeps last so that a checkpoint
    saves the state the other callbacks reached in the same hook (early stopping's decision, say)."""
    for index, callback in enumerate(trainer_callbacks(trainer)):
        if isinstance(callback, Checkpoint):
            return index
    return len(trainer_callbacks(trainer))


def _prune_early_stopping(trainer: Trainer) -> None:
    for callback in [cb for cb in trainer_callbacks(trainer) if isinstance(cb, EarlyStopping)]:
        rank_zero_warn(
            "epoch_transitions_only is set, so the EarlyStopping callback is extraneous and has been removed: "
            "phases (and the run) end by max_transition_epoch and max_epochs."
        )
        trainer_callbacks(trainer).remove(callback)


def _order_lr_monitor(trainer: Trainer, fts: SchedulerView) -> None:
    """Put LearningRateMonitor right after the scheduler, so it sees a new phase's groups in the same epoch."""
    callbacks = trainer_callbacks(trainer)
    monitors = [cb for cb in callbacks if isinstance(cb, LearningRateMonitor)]
    for monitor in monitors:
        if callbacks.index(monitor) < _position(callbacks, fts):
            callbacks.remove(monitor)
            callbacks.insert(_position(callbacks, fts) + 1, monitor)


def _position(callbacks: list[Callback], fts: SchedulerView) -> int:
    # The scheduler is one of the callbacks; it is known here only by the view its collaborators read.
    return next(index for index, callback in enumerate(callbacks) if id(callback) == id(fts))


def _schedulers_given(trainer: Trainer) -> None:
    found = schedulers(trainer)
    if len(found) > 1:
        raise MisconfigurationException(
            f"{len(found)} FinetuningScheduler callbacks were given; use of multiple FinetuningScheduler "
            "callbacks is not supported. Please provide a maximum of one."
        )


def configure_callback_dependencies(trainer: Trainer, fts: SchedulerView) -> None:
    """Make the trainer's callbacks what a scheduled fit needs (called from the scheduler's ``setup``)."""
    _schedulers_given(trainer)
    if fts.epoch_transitions_only:
        _prune_early_stopping(trainer)
    elif not fts.gen_ft_sched_only:
        _ensure(trainer, FTSEarlyStopping, EarlyStopping, fts)
    _ensure(trainer, FTSCheckpoint, ModelCheckpoint, fts)
    _order_lr_monitor(trainer, fts)
