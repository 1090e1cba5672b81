"""Strategy adapters shipped with the library, loaded by reference string like any plugin.

The reference strings live in the core's built-in table (``finetuning_scheduler.core.BUILTIN_ADAPTERS``); importing
this package is never needed to use them.
"""

from ._fsdp import FSDPStrategyAdapter
from ._model_parallel import ModelParallelStrategyAdapter
from ._names import UnwrappedNamesStrategyAdapter

__all__ = ["FSDPStrategyAdapter", "ModelParallelStrategyAdapter", "UnwrappedNamesStrategyAdapter"]
