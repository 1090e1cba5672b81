"""Choosing the strategy adapter class for a strategy flag (interim: qualified class paths only)."""

from __future__ import annotations

import importlib
from typing import Any

from lightning.pytorch.utilities.exceptions import MisconfigurationException

from ._strategy_adapter import StrategyAdapter


def _import_class(reference: str) -> Any:
    module, _, name = reference.partition(":") if ":" in reference else reference.rpartition(".")
    if not module or not name:
        raise MisconfigurationException(
            f"Invalid adapter reference {reference!r}: use 'package.module:Class' or 'package.module.Class'."
        )
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise MisconfigurationException(f"Could not import the strategy adapter {reference!r}: {exc}") from exc


def select_adapter_class(flag: str, custom: dict[str, str] | None, cfg: dict[str, Any]) -> type[StrategyAdapter]:
    """The adapter class for ``flag``: from ``custom`` when given (the flag must be mapped), else the base class."""
    if custom is None:
        return StrategyAdapter
    if flag not in custom:
        raise MisconfigurationException(
            f"Current strategy name ({flag}) does not map to a custom strategy adapter in the provided "
            f"`custom_strategy_adapters` mapping ({custom}). Mapped flags: {sorted(custom)}."
        )
    found = _import_class(custom[flag])
    if not (isinstance(found, type) and issubclass(found, StrategyAdapter)):
        raise MisconfigurationException(f"{custom[flag]!r} (for strategy {flag!r}) is not a StrategyAdapter subclass.")
    return found
