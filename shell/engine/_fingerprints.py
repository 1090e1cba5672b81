"""Resuming with the schedule and the model a checkpoint was trained with: compare the fingerprints it stores."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from finetuning_scheduler.core import Fingerprint, model_changes, schedule_changes

from ._errors import CheckpointMismatchError


def check_fingerprint(
    state: Mapping[str, Any], now: Fingerprint, accept_changed_schedule: bool, warn: Callable[[str], None]
) -> None:
    """Raise when the checkpoint's model differs, or its schedule does and a change is not accepted (then warn).

    A checkpoint saved before fingerprints were stored has none and is not checked.

    >>> now = Fingerprint("aa", 2, ("p0", "p1"), "", 2)
    >>> check_fingerprint({}, now, False, print)  # an older checkpoint
    >>> check_fingerprint({"fingerprint": Fingerprint("aa", 2, ("p0", "xx"), "", 2).as_data()}, now, True, print)
    Resuming with a changed fine-tuning schedule (accept_changed_schedule=True): phase(s) 1 changed (parameters, \
epochs, lr or reinitialisation).
    """
    saved = Fingerprint.from_data(state.get("fingerprint") or {})
    if saved is None:
        return
    model = model_changes(saved, now)
    if model:
        raise CheckpointMismatchError(
            "The checkpoint cannot be resumed with this model: "
            + "; ".join(model)
            + ". Resume with the model the checkpoint was trained with (load only its weights to start a new fit)."
        )
    schedule = schedule_changes(saved, now)
    if not schedule:
        return
    listed = "; ".join(schedule)
    if not accept_changed_schedule:
        raise CheckpointMismatchError(
            f"The fine-tuning schedule differs from the one the checkpoint was trained with: {listed}. Resume with "
            "that schedule, or pass accept_changed_schedule=True to continue with the new one from the saved phase."
        )
    warn(f"Resuming with a changed fine-tuning schedule (accept_changed_schedule=True): {listed}.")


__all__ = ["check_fingerprint"]
