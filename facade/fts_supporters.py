"""FTS's module path for the supporting callbacks (``finetuning_scheduler.fts_supporters``). Defines nothing.

FTS's internal mixins and state class (``FTSState``, ``ScheduleImplMixin``, ``ScheduleParsingMixin``,
``CallbackDepMixin``, ``CallbackResolverMixin``, ``UniqueKeyLoader``) are deliberately not provided: their work is
done by the pure core and the phase engine (see ``docs/lightning.md``, "Intended differences").
"""

from finetuning_scheduler.shell.lightning._callbacks import FTSCheckpoint, FTSEarlyStopping

__all__ = ["FTSCheckpoint", "FTSEarlyStopping"]
