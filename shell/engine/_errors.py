"""What the engine raises and warns, and the one way the shell turns a failed core ``Result`` into an exception."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from returns.pipeline import is_successful
from returns.result import Result

from finetuning_scheduler.core import Diagnostics, errors_only, render_all

_Value = TypeVar("_Value")
_Failure = TypeVar("_Failure")


class ScheduleError(ValueError):
    """The fine-tuning schedule has problems; ``diagnostics`` holds every one of them (errors and warnings)."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        errors = errors_only(diagnostics)
        others = len(diagnostics) - len(errors)
        noun = "error" if len(errors) == 1 else "errors"
        extra = f" (and {others} warning{'s' * (others != 1)})" if others else ""
        super().__init__(f"The fine-tuning schedule has {len(errors)} {noun}{extra}:\n{render_all(diagnostics)}")
        self.diagnostics = diagnostics


class ScheduleWarning(UserWarning):
    """A schedule warning found during validation or while applying a phase (a parameter no phase thaws, ...)."""


class CheckpointMismatchError(ValueError):
    """A saved fit state cannot be matched to the schedule, the model or the rebuilt optimizer."""


class CheckpointReadError(ValueError):
    """A checkpoint file cannot be read: cut off mid-write (a crash, a full disk, an interrupted copy) or not a
    checkpoint at all. The message names the file, says what is wrong with it and lists the other checkpoints."""


class RebuiltGroupsMismatchError(CheckpointMismatchError, RuntimeError):
    """The optimizer rebuilt for a resumed fit does not match the model or the saved optimizer (a ``RuntimeError``
    too, as the driver raised before)."""


def value_or_raise(result: Result[_Value, _Failure], to_error: Callable[[_Failure], Exception]) -> _Value:
    """The success value of ``result``; its failure, turned into an exception by ``to_error``, is raised.

    The shell's one exit from a core ``Result`` (the core itself never raises for expected failures).

    >>> from returns.result import Failure, Success
    >>> value_or_raise(Success(3), ValueError)
    3
    >>> value_or_raise(Failure("no"), ValueError)
    Traceback (most recent call last):
    ...
    ValueError: no
    """
    if not is_successful(result):
        raise to_error(result.failure())
    return result.unwrap()


__all__ = [
    "CheckpointMismatchError",
    "CheckpointReadError",
    "RebuiltGroupsMismatchError",
    "ScheduleError",
    "ScheduleWarning",
    "value_or_raise",
]
