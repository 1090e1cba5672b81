"""The built-in adapter for Lightning's ``FSDPStrategy`` (flags ``fsdp`` and ``fsdp_cpu_offload``)."""

from __future__ import annotations

from collections.abc import Sequence

from ._names import UnwrappedNamesStrategyAdapter


class FSDPStrategyAdapter(UnwrappedNamesStrategyAdapter):
    """FSDP support, thin for now: schedules use the unwrapped names (no ``_fsdp_wrapped_module.``), and wrapping
    follows the strategy's own ``auto_wrap_policy``.

    Not implemented yet (FTS has them): name-driven wrapping overrides (``awp_overrides``), the phase-disjointness
    checks at the FSDP flat-parameter level, and full-state-dict optimizer checkpointing. Use
    ``FSDPStrategy(use_orig_params=True)`` so that parameters of one flat parameter may thaw in different phases.

    Args:
        awp_overrides: module names or regexes to wrap in addition to the auto-wrap policy. Not supported yet:
            giving any raises, rather than being silently ignored.
    """

    def __init__(self, awp_overrides: Sequence[str] | None = None) -> None:
        if awp_overrides:
            raise ValueError(
                f"awp_overrides {list(awp_overrides)} is not supported by this FSDPStrategyAdapter yet; wrap those "
                "modules through FSDPStrategy(auto_wrap_policy=...) instead"
            )
        super().__init__()
        self.awp_overrides: list[str] = []
