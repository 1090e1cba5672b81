"""Fine-tuning in phases: a drop-in for the Fine-Tuning Scheduler (FTS) API with a pure, embeddable core.

Public names are re-exported lazily (PEP 562), so ``import finetuning_scheduler.core`` loads neither torch nor
Lightning, and the torch helpers load without Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetuning_scheduler._checkout import map_checkout_subpackages
from finetuning_scheduler._lazy import lazy_exports

__version__ = "0.1.0"

map_checkout_subpackages(__name__, __file__)  # a source checkout's core/, shell/, adapters_builtin/ (else nothing)

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "EpochTrace": "finetuning_scheduler.shell.driver",
    "FTSCheckpoint": "finetuning_scheduler.shell._callbacks",
    "FTSEarlyStopping": "finetuning_scheduler.shell._callbacks",
    "FinetuningScheduler": "finetuning_scheduler.shell._fts",
    "ScheduleDriver": "finetuning_scheduler.shell.driver",
    "ScheduleError": "finetuning_scheduler.shell.driver",
    "ScheduleValidationError": "finetuning_scheduler.shell._fts",
    "StrategyAdapter": "finetuning_scheduler.shell._strategy_adapter",
    "TransitionRecord": "finetuning_scheduler.shell._fts",
}

__all__ = [
    "EpochTrace",
    "FTSCheckpoint",
    "FTSEarlyStopping",
    "FinetuningScheduler",
    "ScheduleDriver",
    "ScheduleError",
    "ScheduleValidationError",
    "StrategyAdapter",
    "TransitionRecord",
]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


if TYPE_CHECKING:
    from finetuning_scheduler.shell._callbacks import FTSCheckpoint, FTSEarlyStopping
    from finetuning_scheduler.shell._fts import FinetuningScheduler, ScheduleValidationError, TransitionRecord
    from finetuning_scheduler.shell._strategy_adapter import StrategyAdapter
    from finetuning_scheduler.shell.driver import EpochTrace, ScheduleDriver, ScheduleError
