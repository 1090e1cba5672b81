"""The built-in naming adapter: schedules written without wrapper prefixes fit wrapped and compiled models alike."""

from __future__ import annotations

from collections.abc import Sequence

from returns.result import Result
from torch import nn
from typing_extensions import override

from finetuning_scheduler.core import (
    LEADING_WRAPPERS,
    WRAPPER_COMPONENTS,
    Diagnostics,
    NameMap,
    unwrapped_name_map,
)
from finetuning_scheduler.shell.lightning._naming import NameMapAdapterMixin
from finetuning_scheduler.shell.lightning._strategy_adapter import StrategyAdapter


class UnwrappedNamesStrategyAdapter(NameMapAdapterMixin, StrategyAdapter):
    """Schedules name parameters without the components that wrappers insert.

    ``torch.compile`` inserts ``_orig_mod.``, activation checkpointing ``_checkpoint_wrapped_module.``, FSDP
    ``_fsdp_wrapped_module.`` (anywhere in a name) and DDP/DataParallel ``module.`` (at the front). With this adapter
    one schedule (``model.layer.0.weight``) works whether ``model`` is compiled or wrapped, and checkpoints load
    across those variants.

    Select it with ``custom_strategy_adapters={"single_device": "unwrapped_names"}`` (any strategy flag).

    Args:
        wrappers: path components removed anywhere in a name (default: ``_orig_mod``,
            ``_checkpoint_wrapped_module``, ``_fsdp_wrapped_module``).
        leading_wrappers: path components removed only at the front of a name (default: ``module``).
        portable_checkpoints: save checkpoints with unwrapped keys (default ``False``: the module's own keys, which
            plain Lightning can load; loading through the adapter accepts both).
    """

    def __init__(
        self,
        wrappers: Sequence[str] | None = None,
        leading_wrappers: Sequence[str] | None = None,
        portable_checkpoints: bool = False,
    ) -> None:
        super().__init__()
        self.wrappers = tuple(WRAPPER_COMPONENTS if wrappers is None else wrappers)
        self.leading_wrappers = tuple(LEADING_WRAPPERS if leading_wrappers is None else leading_wrappers)
        self.portable_checkpoints = portable_checkpoints

    @override
    def build_name_map(self, module: nn.Module, canonical: tuple[str, ...]) -> Result[NameMap, Diagnostics]:
        """Each parameter's name without wrapper components (two names that collide are an error)."""
        return unwrapped_name_map(canonical, self.wrappers, self.leading_wrappers)
