"""The run's per-epoch trace: one JSON file beside the schedule in ``log_dir``, written by rank zero atomically.

Each entry says what an epoch trained (depth, why a phase began, how many parameters were trainable and their
share of the model, each group's lr) and what the monitored metric was at its end, so a run can be read, plotted
or compared after the fact, whichever strategy ran it (with ``ddp_spawn`` the launching process's callback never
sees the workers' state; the file does). The trainable counts are taken when the scheduler sets or changes the
trainable parameters (fit start, each phase, a resume), not re-counted every epoch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from finetuning_scheduler.core import Reason

from ..engine import trainable_counts, write_text_atomically

TRACE_FORMAT = 1
"""The layout version of the trace file (its ``format`` key)."""


def trace_file_name(module: object) -> str:
    """The trace's file name, beside ``{Module}_ft_schedule.yaml``.

    >>> class Classifier: ...
    >>> trace_file_name(Classifier())
    'Classifier_ft_trace.json'
    """
    return f"{type(module).__name__}_ft_trace.json"


def _plain_number(value: object) -> float | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


class TraceWriter:
    """Collects the entries of one fit and rewrites the trace file after every epoch (small, so a crash loses at
    most the epoch in flight, and a reader never sees half a file).

    Args:
        path: the trace file.
        enabled: whether this process writes (rank zero only).
    """

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self.entries: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._begun = False
        self._counts: tuple[int, int, int] | None = None

    def count_trainable(self, module: nn.Module) -> None:
        """Count the trainable parameters now; epochs reuse the count until :meth:`trainable_changed` (counting
        walks the module: 0.3 s an epoch at 100k parameter tensors, for a number that changes only with the
        scheduler's phases)."""
        self._counts = None
        if self.enabled:
            counts = trainable_counts(module)
            # No parameters yet (a model that builds them in configure_model, after setup): counted at the epoch.
            self._counts = counts if counts[2] else None

    def trainable_changed(self) -> None:
        """The scheduler changed which parameters train: the next epoch counts them again."""
        self._counts = None

    def _begin(self, first_epoch: int) -> None:
        """Begin a fit at ``first_epoch``: a resumed fit keeps the earlier epochs of the file it continues."""
        self._begun = True
        self.entries = []
        if first_epoch == 0 or not self.path.is_file():
            return
        try:
            earlier = json.loads(self.path.read_text(encoding="utf-8")).get("epochs", [])
        except (OSError, ValueError, AttributeError):
            return  # an unreadable trace is not worth failing a fit over: it is rewritten from here
        self.entries = [entry for entry in earlier if isinstance(entry, dict) and entry.get("epoch", 0) < first_epoch]

    def epoch_started(
        self, epoch: int, depth: int, reason: Reason | None, optimizer: torch.optim.Optimizer, module: nn.Module
    ) -> None:
        """Note what this epoch trains (after any phase change at its start)."""
        if not self.enabled:
            return
        if not self._begun:
            self._begin(epoch)
        if self._counts is None:
            self.count_trainable(module)
        count, trainable, total = self._counts or trainable_counts(module)
        self._open = {
            "epoch": epoch,
            "depth": depth,
            "reason": None if reason is None else reason.value,
            "trainable_tensors": count,
            "trainable_share": trainable / total if total else 0.0,
            "lrs": [float(group["lr"]) for group in optimizer.param_groups],
        }

    def epoch_ended(self, monitor: str | None, metrics: dict[str, Any]) -> None:
        """Close the epoch's entry with the monitored metric and rewrite the file."""
        if not self.enabled or self._open is None:
            return
        entry = {**self._open, "monitor": monitor, "value": _plain_number(metrics.get(monitor)) if monitor else None}
        self._open = None
        self.entries = [e for e in self.entries if e.get("epoch") != entry["epoch"]] + [entry]
        document = {"format": TRACE_FORMAT, "epochs": self.entries}
        write_text_atomically(self.path, json.dumps(document, indent=1) + "\n")


__all__ = ["TRACE_FORMAT", "TraceWriter", "trace_file_name"]
