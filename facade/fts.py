"""FTS's module path for the callback (``finetuning_scheduler.fts``), so imports copied from FTS code keep working.
Defines nothing."""

from finetuning_scheduler.shell.lightning._fts import FinetuningScheduler

__all__ = ["FinetuningScheduler"]
