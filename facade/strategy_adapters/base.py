"""FTS's module path for the base class (``finetuning_scheduler.strategy_adapters.base``), for plugins written
against it. Defines nothing."""

from finetuning_scheduler.shell.lightning._strategy_adapter import StrategyAdapter

__all__ = ["StrategyAdapter"]
