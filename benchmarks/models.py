"""Synthetic but realistic parameter inventories and schedules for the core setup benchmarks (names: perf/_layout)."""

from __future__ import annotations

from finetuning_scheduler.core import ParamInventory, Phase, Schedule

from .perf._layout import LAYERS, moe_names, regex_phases

__all__ = ["LAYERS", "inventory", "moe_names", "regex_schedule"]


def inventory(target: int) -> ParamInventory:
    """The inventory of :func:`moe_names` (sizes are not needed to validate)."""
    return ParamInventory.from_names(moe_names(target))


def regex_schedule() -> Schedule:
    """The 23-phase, 50-regex schedule of :func:`regex_phases` as a core :class:`Schedule`.

    >>> sum(len(phase.params) for phase in regex_schedule().phases), len(regex_schedule().phases)
    (50, 23)
    """
    return Schedule(tuple(Phase(tuple(phase)) for phase in regex_phases()))
