"""Fingerprints of a resolved schedule and of the model's parameter names, stored in checkpoints so that a resume
with another schedule or another model is found and explained instead of silently training something else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._records import Phase, ResolvedPhase, ResolvedSchedule, phase_rows, reinit_data

DETAILED_PHASES = 64
"""Phases fingerprinted one by one (to say which one changed); later phases share one digest, so a 50k-phase
generated schedule adds a few hundred bytes to a checkpoint, not megabytes."""


def _digest(parts: object) -> str:
    """A short digest of JSON-like data, independent of dict order (a reinitialisation block's ``init_args``
    written in another order is the same schedule). One ``json.dumps`` call: its C encoder writes a 50k-phase
    schedule in tens of milliseconds, where a call per phase took most of a second."""
    text = json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _names_digest(names: list[str]) -> str:
    return hashlib.blake2b("\n".join(names).encode(), digest_size=8).hexdigest()


PhaseRow = tuple[tuple[str, ...], int, float | None, dict[str, Any] | None]


def _rows(phases: Sequence[ResolvedPhase]) -> list[PhaseRow]:
    """Each phase as ``(names, max_transition_epoch, lr, reinitialisation data or None)``."""
    return [
        (names, epoch, lr, reinit_data(blocks) if _reinits(blocks) else None)
        for names, epoch, lr, blocks in phase_rows(phases)
    ]


def _reinits(phase: Phase | ResolvedPhase) -> bool:
    return phase.new_optimizer is not None or phase.new_lr_scheduler is not None


@attrs.frozen
class Fingerprint:
    """What a checkpoint's fit was trained with.

    Attributes:
        params: digest of the model's parameter names (schedule-space names, in sorted order).
        param_count: how many parameter names.
        phases: digest of each of the first :data:`DETAILED_PHASES` phases (names, epochs, lr, reinitialisation).
        rest: digest of the phases after those (``""`` when there are none).
        phase_count: how many phases.
    """

    params: str
    param_count: int
    phases: tuple[str, ...]
    rest: str
    phase_count: int

    def as_data(self) -> dict[str, Any]:
        """Plain data for a checkpoint (``torch.load(weights_only=True)`` and JSON safe)."""
        return {**attrs.asdict(self), "phases": list(self.phases)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Fingerprint | None:
        """The fingerprint of a checkpoint's data; ``None`` when it is missing or not one (an older checkpoint)."""
        try:
            return cls(
                str(data["params"]),
                int(data["param_count"]),
                tuple(str(d) for d in data["phases"]),
                str(data["rest"]),
                int(data["phase_count"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def fingerprint(resolved: ResolvedSchedule) -> Fingerprint:
    """The fingerprint of a resolved schedule (its parameter names are the model's: every phase's and the
    unscheduled ones).

    >>> from ._records import ParamInventory, Phase, Schedule
    >>> from ._validate import validate
    >>> model = ParamInventory.from_names(["body.w", "head.w"])
    >>> one = fingerprint(validate(Schedule((Phase(("head.w",)), Phase(("body.w",)))), model).unwrap())
    >>> two = fingerprint(validate(Schedule((Phase(("head.w",)), Phase(("body.w",), lr=1e-3))), model).unwrap())
    >>> one.params == two.params, one.phases[0] == two.phases[0], one.phases[1] == two.phases[1]
    (True, True, False)
    """
    rows = _rows(resolved.phases)
    names = sorted(set(resolved.unscheduled).union(*(row[0] for row in rows)))
    phase_digests = tuple(_digest(row) for row in rows[:DETAILED_PHASES])
    rest = _digest(rows[DETAILED_PHASES:]) if len(rows) > DETAILED_PHASES else ""
    return Fingerprint(_names_digest(names), len(names), phase_digests, rest, len(rows))


def model_changes(saved: Fingerprint, now: Fingerprint) -> tuple[str, ...]:
    """How the model's parameter names differ from the checkpoint's (empty when they are the same)."""
    if saved.params == now.params:
        return ()
    return (
        f"the model's parameter names differ from the checkpoint's ({saved.param_count} names then, "
        f"{now.param_count} now): this checkpoint was saved from another model",
    )


def schedule_changes(saved: Fingerprint, now: Fingerprint) -> tuple[str, ...]:
    """How the schedule differs from the checkpoint's: which phases, as far as the fingerprints tell."""
    found = []
    if saved.phase_count != now.phase_count:
        found.append(f"the schedule had {saved.phase_count} phases, it has {now.phase_count} now")
    changed = [i for i, (a, b) in enumerate(zip(saved.phases, now.phases, strict=False)) if a != b]
    if changed:
        found.append(f"phase(s) {', '.join(map(str, changed))} changed (parameters, epochs, lr or reinitialisation)")
    if saved.rest != now.rest and saved.phase_count == now.phase_count:
        found.append(f"a phase after phase {DETAILED_PHASES - 1} changed")
    return tuple(found)


__all__ = ["DETAILED_PHASES", "Fingerprint", "fingerprint", "model_changes", "schedule_changes"]
