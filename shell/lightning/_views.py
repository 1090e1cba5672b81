"""What the scheduler's collaborators read from it, as a ``Protocol``: early stopping, the checkpoint callback, the
callback wiring and strategy adapters depend on this small view, never on the callback's module, so imports
point one way only (the callback imports them).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, cast

from lightning.pytorch import Callback, LightningModule, Trainer

from finetuning_scheduler.core import RawSchedule, ValidationOptions


class SchedulerView(Protocol):
    """The parts of a ``FinetuningScheduler`` that its collaborators read."""

    ft_schedule: Any
    max_depth: int
    restore_best: bool
    epoch_transitions_only: bool
    gen_ft_sched_only: bool
    allow_untested: bool
    allowed_class_prefixes: tuple[str, ...] | None
    raw_schedule: RawSchedule | Mapping[Any, Any]

    @property
    def curr_depth(self) -> int:
        """The current phase."""
        ...

    @property
    def pl_module(self) -> LightningModule:
        """The LightningModule of the current fit."""
        ...

    @property
    def trainer(self) -> Trainer:
        """The Trainer of the current fit."""
        ...

    @property
    def log_dir(self) -> str:
        """Where schedule files go."""
        ...

    @property
    def validation_options(self) -> ValidationOptions:
        """The options the schedule is validated with."""
        ...


def trainer_callbacks(trainer: Trainer) -> list[Callback]:
    """The trainer's callback list, typed (Lightning sets it in its callback connector, untyped for mypy)."""
    return cast("list[Callback]", trainer.callbacks)  # type: ignore[attr-defined]


def schedulers(trainer: Trainer) -> list[Callback]:
    """The trainer's FinetuningScheduler callbacks, recognised by their attributes as FTS does. Read without
    calling a property: ``ft_schedule`` builds the resolved schedule's dict when first read."""
    return [
        cb
        for cb in trainer_callbacks(trainer)
        if inspect.getattr_static(cb, "ft_schedule", _MISSING) is not _MISSING
        and inspect.getattr_static(cb, "max_depth", _MISSING) is not _MISSING
    ]


_MISSING = object()


CallbackT = TypeVar("CallbackT", bound=Callback)


def first_callback(trainer: Trainer, kind: type[CallbackT]) -> CallbackT | None:
    """The trainer's first callback of ``kind``, if any."""
    return next((cb for cb in trainer_callbacks(trainer) if isinstance(cb, kind)), None)


__all__ = ["SchedulerView", "first_callback", "schedulers", "trainer_callbacks"]
