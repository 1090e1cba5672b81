"""The built-in adapter for Lightning's ``ModelParallelStrategy`` (FSDP2 / tensor parallel)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._names import UnwrappedNamesStrategyAdapter


class ModelParallelStrategyAdapter(UnwrappedNamesStrategyAdapter):
    """ModelParallelStrategy support, thin for now: schedules use unwrapped names (no
    ``_checkpoint_wrapped_module.``), and sharding is whatever the LightningModule's ``configure_model`` applies.

    Not implemented yet (FTS has them): applying an ``fsdp_plan`` (``fully_shard`` per module name or regex, with
    ``fsdp_default_kwargs``) and the mixed DTensor checks.

    Args:
        fsdp_default_kwargs: default ``fully_shard`` keyword arguments of the plan. Not supported yet.
        fsdp_plan: module name or regex -> ``fully_shard`` keyword arguments. Not supported yet: giving either
            raises, rather than being silently ignored.
    """

    def __init__(
        self, fsdp_default_kwargs: Mapping[str, Any] | None = None, fsdp_plan: Mapping[str, Any] | None = None
    ) -> None:
        given = [
            name for name, value in (("fsdp_plan", fsdp_plan), ("fsdp_default_kwargs", fsdp_default_kwargs)) if value
        ]
        if given:
            raise ValueError(
                f"{' and '.join(given)} are not supported by this ModelParallelStrategyAdapter yet; shard the model "
                "in the LightningModule's configure_model instead"
            )
        super().__init__()
        self.fsdp_default_kwargs: dict[str, Any] = {}
        self.fsdp_plan: dict[str, Any] = {}
