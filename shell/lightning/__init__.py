"""The Lightning integration: FinetuningScheduler, FTSEarlyStopping, FTSCheckpoint and the StrategyAdapter base.

The callbacks gather Lightning's facts (epoch, early-stopping signal, strategy, checkpoints) and hand them to the
phase engine (``shell.engine``); adapters reach them through the small view in ``_views``.
"""

from ._adapters import STRATEGY_ADAPTERS, AdapterRegistry, load_adapter, make_adapter, strategy_flag_of
from ._callbacks import FTSCheckpoint, FTSEarlyStopping
from ._errors import LightningCheckpointMismatchError, ScheduleValidationError
from ._fit_steps import PATCHED_BY_SCHEDULER, optimizer_state_left_out, unpatch
from ._fts import FinetuningScheduler, TransitionRecord
from ._naming import NameMapAdapterMixin, NameTranslationError
from ._schedule_setup import checked_schedule
from ._strategy_adapter import StrategyAdapter
from ._views import SchedulerView

__all__ = [
    "PATCHED_BY_SCHEDULER",
    "STRATEGY_ADAPTERS",
    "AdapterRegistry",
    "FTSCheckpoint",
    "FTSEarlyStopping",
    "FinetuningScheduler",
    "LightningCheckpointMismatchError",
    "NameMapAdapterMixin",
    "NameTranslationError",
    "ScheduleValidationError",
    "SchedulerView",
    "StrategyAdapter",
    "TransitionRecord",
    "checked_schedule",
    "load_adapter",
    "make_adapter",
    "optimizer_state_left_out",
    "strategy_flag_of",
    "unpatch",
]
