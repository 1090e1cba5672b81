"""The Lightning integration's errors: the engine's, catchable as Lightning's ``MisconfigurationException`` too."""

from __future__ import annotations

from lightning.pytorch.utilities.exceptions import MisconfigurationException  # type: ignore[attr-defined]

from ..engine import CheckpointMismatchError, ScheduleError


class ScheduleValidationError(ScheduleError, MisconfigurationException):
    """The fine-tuning schedule has problems (``diagnostics`` holds every one of them), raised at ``setup``.

    A :class:`ScheduleError` (what the driver for other trainers raises) that Lightning users can also catch as a
    ``MisconfigurationException``.

    >>> from finetuning_scheduler.core import error
    >>> problem = ScheduleValidationError((error("no-match", "'head.*' matches no parameter"),))
    >>> isinstance(problem, MisconfigurationException), isinstance(problem, ScheduleError), len(problem.diagnostics)
    (True, True, 1)
    """


class LightningCheckpointMismatchError(CheckpointMismatchError, MisconfigurationException):
    """The checkpoint cannot be resumed with this schedule and model (a ``MisconfigurationException`` too)."""


__all__ = ["LightningCheckpointMismatchError", "ScheduleValidationError"]
