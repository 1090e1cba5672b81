"""What the engine reports about a fit: the phase changes it made and the state of each epoch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from finetuning_scheduler.core import Reason


@attrs.frozen
class PhaseChange:
    """A phase change that happened during training (for logs, traces, summaries and checkpoints).

    Attributes:
        epoch: the epoch at whose start the new phase began.
        depth: the phase entered.
        reason: why the previous phase ended.
        restored_best: whether the best checkpoint was reloaded first.
    """

    epoch: int
    depth: int
    reason: Reason
    restored_best: bool = False

    def as_data(self) -> dict[str, Any]:
        """Plain data for checkpoints (``weights_only=True`` loads it) and JSON.

        >>> PhaseChange(2, 1, Reason.EPOCH).as_data()
        {'epoch': 2, 'depth': 1, 'reason': 'EPOCH', 'restored_best': False}
        """
        return {
            "epoch": self.epoch,
            "depth": self.depth,
            "reason": self.reason.name,
            "restored_best": self.restored_best,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> PhaseChange:
        """The record back from :meth:`as_data` (states saved before ``restored_best`` existed read it as false).

        >>> PhaseChange.from_data({"epoch": 2, "depth": 1, "reason": "EPOCH"})
        PhaseChange(epoch=2, depth=1, reason=<Reason.EPOCH: 'max_transition_epoch reached'>, restored_best=False)
        """
        return cls(int(data["epoch"]), int(data["depth"]), Reason[data["reason"]], bool(data.get("restored_best")))


@attrs.frozen
class EpochTrace:
    """What the model and optimizer look like at the start of an epoch, after any phase change (for logs and tests).

    Attributes:
        epoch: the epoch about to be trained.
        depth: the current phase.
        reason: why a new phase began at this epoch; ``None`` when none did.
        trainable: names of the parameters that require gradients.
        groups: the parameter names in each optimizer group, in group order.
        lrs: the learning rate of each optimizer group.
    """

    epoch: int
    depth: int
    reason: Reason | None
    trainable: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    lrs: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for loggers and JSON.

        >>> EpochTrace(3, 1, Reason.EPOCH, ("w",), (("w",),), (0.1,)).as_dict()["reason"]
        'EPOCH'
        """
        data = attrs.asdict(self, recurse=False)
        data["reason"] = None if self.reason is None else self.reason.name
        data.update(trainable=list(self.trainable), groups=[list(g) for g in self.groups], lrs=list(self.lrs))
        return data


__all__ = ["EpochTrace", "PhaseChange"]
