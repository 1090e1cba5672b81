"""Reaching the user's module and torch optimizer inside the wrappers of Fabric, DDP and Accelerate."""

from __future__ import annotations

import torch
from torch import nn


def unwrap_module(module: nn.Module) -> nn.Module:
    """The user's module inside a Fabric or DDP wrapper (their parameter names carry a wrapper prefix).

    >>> layer = nn.Linear(2, 1); unwrap_module(layer) is layer
    True
    """
    while True:
        inner = getattr(module, "_original_module", None)  # Lightning Fabric's _FabricModule
        if inner is None and isinstance(module, nn.parallel.DistributedDataParallel | nn.DataParallel):
            inner = module.module
        if not isinstance(inner, nn.Module) or inner is module:
            return module
        module = inner


def unwrap_optimizer(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside a Fabric or Accelerate wrapper (both share its ``param_groups`` and ``state``)."""
    inner = getattr(optimizer, "optimizer", None)
    while isinstance(inner, torch.optim.Optimizer) and inner is not optimizer:
        optimizer, inner = inner, getattr(inner, "optimizer", None)
    return optimizer


__all__ = ["unwrap_module", "unwrap_optimizer"]
