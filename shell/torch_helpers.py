"""Former path of :mod:`finetuning_scheduler.shell.engine.torch_helpers`, kept so existing imports work."""

from .engine import (
    add_param_groups,
    extend_scheduler_state,
    freeze,
    group_names,
    inventory,
    optimizer_problems,
    thaw,
    track_bn_running_stats,
    trainable_names,
    truncate_param_groups,
)

__all__ = [
    "add_param_groups",
    "extend_scheduler_state",
    "freeze",
    "group_names",
    "inventory",
    "optimizer_problems",
    "thaw",
    "track_bn_running_stats",
    "trainable_names",
    "truncate_param_groups",
]
