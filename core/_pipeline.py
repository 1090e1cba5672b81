"""From plain data (YAML with positions, or a dict) to a resolved schedule, with every problem reported at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostic, Diagnostics, errors_only
from ._records import ParamInventory, ResolvedSchedule, ValidationOptions
from ._structure import as_raw, structure_leniently
from ._validate import diagnose
from ._yaml import RawSchedule, parse_yaml


def _phases_with_errors(diagnostics: Diagnostics) -> set[int | None]:
    return {d.location.phase for d in errors_only(diagnostics)}


def resolve_schedule(
    raw: RawSchedule | Mapping[Any, Any],
    inventory: ParamInventory,
    options: ValidationOptions = ValidationOptions(),
) -> Result[ResolvedSchedule, Diagnostics]:
    """Structure and validate in one pass: structural errors and model errors are reported together.

    A phase whose structure is broken is validated with what could be read of it, so a typo in one key does not
    hide a missing parameter in another.

    >>> inventory = ParamInventory.from_names(["body.weight", "head.weight"])
    >>> raw = {0: {"params": ["head.weight"], "max_transition_epoch": "3"}, 1: {"params": ["neck.*"]}}
    >>> [d.code for d in resolve_schedule(raw, inventory).failure()]
    ['invalid-value', 'no-match', 'unscheduled-params']
    """
    schedule, structural = structure_leniently(as_raw(raw))
    outcome = diagnose(schedule, inventory, options)
    if not errors_only(structural):
        return Success(outcome) if isinstance(outcome, ResolvedSchedule) else Failure(outcome)
    broken = _phases_with_errors(structural)
    later = outcome.warnings if isinstance(outcome, ResolvedSchedule) else outcome
    kept = tuple(d for d in later if not _redundant(d, broken))
    return Failure(_merge(structural, kept))


def _redundant(diagnostic: Diagnostic, broken: set[int | None]) -> bool:
    """An unreadable phase (or schedule) is "empty" only because it could not be read: do not report that twice."""
    return diagnostic.code in ("empty-phase", "schedule-empty") and diagnostic.location.phase in broken


def _merge(first: Diagnostics, second: Diagnostics) -> Diagnostics:
    """Interleave by phase (schedule-wide last), structural problems before model problems within a phase."""
    ranked = [(d.location.phase, group, d) for group, found in enumerate((first, second)) for d in found]
    ranked.sort(key=lambda item: (1 << 30 if item[0] is None else item[0], item[1]))
    return tuple(d for _, _, d in ranked)


def resolve_yaml(
    text: str, inventory: ParamInventory, options: ValidationOptions = ValidationOptions(), file: str | None = None
) -> Result[ResolvedSchedule, Diagnostics]:
    """Parse YAML text and resolve it against a model: every error with its ``file:line:col``.

    >>> text = "0:\\n  params: [head.weight]\\n1:\\n  params: [body.weight]\\n  lr: -1\\n"
    >>> inventory = ParamInventory.from_names(["body.weight", "head.weight"])
    >>> print(resolve_yaml(text, inventory, file="s.yaml").failure()[0].render())
    s.yaml:5:3: error[invalid-lr] phase 1 › lr: lr must be a positive finite number, got -1.0
    """
    return parse_yaml(text, file).bind(lambda raw: resolve_schedule(raw, inventory, options))
