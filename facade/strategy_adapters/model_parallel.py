"""FTS's module path for the model-parallel adapter (``finetuning_scheduler.strategy_adapters.model_parallel``).
Defines nothing."""

from finetuning_scheduler.adapters_builtin._model_parallel import ModelParallelStrategyAdapter

__all__ = ["ModelParallelStrategyAdapter"]
