"""Models that the command-line tests name as ``cli_models:...`` (this folder is on the test path)."""

from __future__ import annotations

from torch import nn


class Net(nn.Module):
    """A stack of equal linear layers and a head."""

    def __init__(self, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.head = nn.Linear(width, 2)


def huge() -> Net:
    """About 3.2 billion parameters: nothing is allocated on the meta device."""
    return Net(width=8192, depth=48)


def broken() -> Net:
    raise RuntimeError("this factory always fails")
