"""Fine-tuning in phases: a drop-in for the Fine-Tuning Scheduler (FTS) API with a pure, embeddable core.

Public names are re-exported lazily (PEP 562), so ``import finetuning_scheduler.core`` loads neither torch nor
Lightning, and the torch helpers load without Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetuning_scheduler._lazy import lazy_exports

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ArgumentError": "finetuning_scheduler.shell.engine._arguments",
    "CheckpointMismatchError": "finetuning_scheduler.shell.engine._errors",
    "CheckpointReadError": "finetuning_scheduler.shell.engine._errors",
    "EpochTrace": "finetuning_scheduler.shell.engine._records",
    "FTSCheckpoint": "finetuning_scheduler.shell.lightning._callbacks",
    "FTSEarlyStopping": "finetuning_scheduler.shell.lightning._callbacks",
    "FinetuningScheduler": "finetuning_scheduler.shell.lightning._fts",
    "PhaseChange": "finetuning_scheduler.shell.engine._records",
    "PhasePlateau": "finetuning_scheduler.shell.integrations.driver",
    "ScheduleDriver": "finetuning_scheduler.shell.integrations.driver",
    "ScheduleError": "finetuning_scheduler.shell.engine._errors",
    "ScheduleValidationError": "finetuning_scheduler.shell.lightning._errors",
    "StrategyAdapter": "finetuning_scheduler.shell.lightning._strategy_adapter",
    "TransitionRecord": "finetuning_scheduler.shell.lightning._fts",
}

__all__ = [
    "ArgumentError",
    "CheckpointMismatchError",
    "CheckpointReadError",
    "EpochTrace",
    "FTSCheckpoint",
    "FTSEarlyStopping",
    "FinetuningScheduler",
    "PhaseChange",
    "PhasePlateau",
    "ScheduleDriver",
    "ScheduleError",
    "ScheduleValidationError",
    "StrategyAdapter",
    "TransitionRecord",
]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


if TYPE_CHECKING:
    from finetuning_scheduler.shell.engine._arguments import ArgumentError
    from finetuning_scheduler.shell.engine._errors import CheckpointMismatchError, CheckpointReadError, ScheduleError
    from finetuning_scheduler.shell.engine._records import EpochTrace, PhaseChange
    from finetuning_scheduler.shell.integrations.driver import PhasePlateau, ScheduleDriver
    from finetuning_scheduler.shell.lightning._callbacks import FTSCheckpoint, FTSEarlyStopping
    from finetuning_scheduler.shell.lightning._errors import ScheduleValidationError
    from finetuning_scheduler.shell.lightning._fts import FinetuningScheduler, TransitionRecord
    from finetuning_scheduler.shell.lightning._strategy_adapter import StrategyAdapter
