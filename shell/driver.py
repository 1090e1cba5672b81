"""Former path of :mod:`finetuning_scheduler.shell.integrations.driver`, kept so existing imports work."""

from .integrations.driver import (
    EpochTrace,
    NoDecay,
    PhaseChange,
    PhasePlateau,
    ScheduleDriver,
    ScheduleError,
    ScheduleSource,
    ScheduleWarning,
    unwrap_module,
    unwrap_optimizer,
)

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
