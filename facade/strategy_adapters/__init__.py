"""Strategy adapters: the base class, the built-in adapters and the registry of built-in plus plugin adapters.

A facade: everything is defined in ``finetuning_scheduler.shell`` or ``finetuning_scheduler.adapters_builtin`` and
re-exported lazily (PEP 562), so importing this module loads nothing heavy until a name is used.

Third-party adapters register under the entry-point group ``finetuning_scheduler.strategy_adapters``; see
``docs/adapters.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetuning_scheduler._lazy import lazy_exports

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AdapterError": "finetuning_scheduler.shell.plugins",
    "AdapterRegistry": "finetuning_scheduler.shell.lightning._adapters",
    "AdapterWarning": "finetuning_scheduler.shell.plugins",
    "FSDPStrategyAdapter": "finetuning_scheduler.adapters_builtin._fsdp",
    "ModelParallelStrategyAdapter": "finetuning_scheduler.adapters_builtin._model_parallel",
    "NameMapAdapterMixin": "finetuning_scheduler.shell.lightning._naming",
    "NameTranslationError": "finetuning_scheduler.shell.lightning._naming",
    "STRATEGY_ADAPTERS": "finetuning_scheduler.shell.lightning._adapters",
    "StrategyAdapter": "finetuning_scheduler.shell.lightning._strategy_adapter",
    "UnwrappedNamesStrategyAdapter": "finetuning_scheduler.adapters_builtin._names",
    "discover_adapters": "finetuning_scheduler.shell.plugins",
    "load_adapter": "finetuning_scheduler.shell.lightning._adapters",
    "make_adapter": "finetuning_scheduler.shell.lightning._adapters",
}

__all__ = [
    "STRATEGY_ADAPTERS",
    "AdapterError",
    "AdapterRegistry",
    "AdapterWarning",
    "FSDPStrategyAdapter",
    "ModelParallelStrategyAdapter",
    "NameMapAdapterMixin",
    "NameTranslationError",
    "StrategyAdapter",
    "UnwrappedNamesStrategyAdapter",
    "discover_adapters",
    "load_adapter",
    "make_adapter",
]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


if TYPE_CHECKING:
    from finetuning_scheduler.adapters_builtin._fsdp import FSDPStrategyAdapter
    from finetuning_scheduler.adapters_builtin._model_parallel import ModelParallelStrategyAdapter
    from finetuning_scheduler.adapters_builtin._names import UnwrappedNamesStrategyAdapter
    from finetuning_scheduler.shell.lightning._adapters import (
        STRATEGY_ADAPTERS,
        AdapterRegistry,
        load_adapter,
        make_adapter,
    )
    from finetuning_scheduler.shell.lightning._naming import NameMapAdapterMixin, NameTranslationError
    from finetuning_scheduler.shell.lightning._strategy_adapter import StrategyAdapter
    from finetuning_scheduler.shell.plugins import AdapterError, AdapterWarning, discover_adapters
