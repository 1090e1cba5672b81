"""FTS's module path for the FSDP adapter (``finetuning_scheduler.strategy_adapters.fsdp``). Defines nothing."""

from finetuning_scheduler.adapters_builtin._fsdp import FSDPStrategyAdapter

__all__ = ["FSDPStrategyAdapter"]
