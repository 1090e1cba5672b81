"""Strategy adapters whose hooks fail, for the plugin-fault tests (imported by reference, as a plugin would be)."""

from __future__ import annotations

from typing import Any

from finetuning_scheduler import StrategyAdapter


class FailsBeforeInit(StrategyAdapter):
    def on_before_init_fts(self) -> None:
        raise RuntimeError("no GPU topology file")


class FailsToTranslate(StrategyAdapter):
    def fts_optim_transform(self, orig_pl: list[str], inspect_only: bool = False) -> list[str]:
        raise KeyError(orig_pl[0])


class FailsOnPhaseChange(StrategyAdapter):
    def on_trainable_changed(self) -> None:
        if self.fts_handle.curr_depth > 0:
            raise ValueError("cannot re-wrap")
        super().on_trainable_changed()


class FailsToSave(StrategyAdapter):
    def lightning_module_state_dict(self) -> dict[str, Any]:
        raise OSError("disk quota")
