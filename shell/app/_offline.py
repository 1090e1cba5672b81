"""Checking a schedule against a model without a Trainer: the same adapter path and checks as the callback's setup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from finetuning_scheduler.core import (
    Diagnostics,
    ImplicitReinit,
    RawSchedule,
    ResolvedSchedule,
    UnscheduledPolicy,
    ValidationOptions,
)

from ..lightning import StrategyAdapter, checked_schedule, make_adapter
from ._models import UsageError


class OfflineView:
    """What an adapter reads from the scheduler, for a model that is not being trained (no Trainer)."""

    def __init__(self, module: nn.Module, raw: RawSchedule | Mapping[Any, Any], max_depth: int = -1) -> None:
        self.pl_module = module
        self.raw_schedule = raw
        self.ft_schedule: Any = raw
        self.max_depth = max_depth
        self.restore_best = False
        self.epoch_transitions_only = False
        self.gen_ft_sched_only = False
        self.allow_untested = True
        self.curr_depth = 0
        self.log_dir = "."
        self.validation_options = ValidationOptions(max_depth=max_depth, unscheduled=UnscheduledPolicy.WARN)

    trainer: Any = None  # no fit: adapters that need the strategy's settings check those in the fit itself


def offline_adapter(
    module: nn.Module,
    raw: RawSchedule | Mapping[Any, Any],
    adapter: str | None = None,
    strategy: str | None = None,
    cfg: Mapping[str, Any] | None = None,
    max_depth: int = -1,
) -> StrategyAdapter:
    """The adapter a fit with ``strategy`` (and ``--adapter`` mapped to it) would use, connected to the model."""
    flag = strategy or "single_device"
    custom = {flag: adapter} if adapter else None
    try:
        chosen = make_adapter(flag, custom, cfg, allow_untested=True)
    except Exception as exc:  # AdapterError (and the adapter's own constructor errors): a usage error here
        raise UsageError(str(exc)) from exc
    chosen.connect(OfflineView(module, raw, max_depth))  # type: ignore[arg-type]
    return chosen


def check_offline(
    adapter: StrategyAdapter, implicit: ImplicitReinit | None = None, allowed_prefixes: Sequence[str] | None = None
) -> tuple[ResolvedSchedule | None, Diagnostics]:
    """The resolved schedule (``None`` when invalid) and every diagnostic, as the callback's setup finds them."""
    raw = adapter.fts_handle.raw_schedule
    return checked_schedule(adapter, raw, implicit or ImplicitReinit(), False, allowed_prefixes)


__all__ = ["OfflineView", "check_offline", "offline_adapter"]
