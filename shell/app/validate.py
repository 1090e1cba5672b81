"""``validate SCHEDULE --model REF``: check a schedule against a model without training it.

One line per problem, ``FILE:LINE:COL: error[code] phase N › key: message`` (editors and CI annotate from it), its
hint below, then a summary. Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from finetuning_scheduler.core import Diagnostic, Diagnostics, ResolvedSchedule, errors_only, warnings_only

from ..engine import inventory, read_schedule
from ._models import UsageError, add_model_arguments, model_from_args, parse_init_args
from ._offline import check_offline, offline_adapter

SUMMARY = "check a fine-tuning schedule against a model, without training (the model is built on the meta device)"


def add_schedule_arguments(parser: argparse.ArgumentParser, many: bool = False) -> None:
    """The schedule and how to read it: shared by ``validate`` (several files: a pre-commit hook passes them all)
    and ``plan``."""
    if many:
        parser.add_argument("schedules", type=Path, nargs="+", metavar="SCHEDULE", help="YAML schedule files")
    else:
        parser.add_argument("schedule", type=Path, metavar="SCHEDULE", help="the YAML schedule file")
    add_model_arguments(parser)
    parser.add_argument("--adapter", metavar="REF", help="a strategy adapter (entry-point name, module:Class)")
    parser.add_argument("--strategy", metavar="FLAG", help="the strategy flag whose adapter to use (e.g. fsdp)")
    parser.add_argument("--adapter-cfg", metavar="JSON", help="the adapter's options (strategy_adapter_cfg)")
    parser.add_argument("--max-depth", type=int, default=-1, help="as FinetuningScheduler(max_depth=...)")
    parser.add_argument(
        "--allowed-class-prefix",
        action="append",
        metavar="MODULE",
        help="import reinitialisation classes only from this module (repeatable; as allowed_class_prefixes): "
        "checking a class_path imports it, which runs its module's code",
    )


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_schedule_arguments(parser, many=True)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="diagnostics as text or JSON")
    return parser


def resolve_for(
    args: argparse.Namespace, schedule: Path | None = None, model: Any = None
) -> tuple[ResolvedSchedule | None, Diagnostics, Any]:
    """Read the schedule, build the model (unless given), check one against the other: (resolved or None,
    diagnostics, model)."""
    raw = read_schedule(schedule or args.schedule)
    if not raw.value_or(None):
        problems = raw.failure()
        if problems and problems[0].code == "schedule-file":
            raise UsageError(problems[0].message)
        return None, problems, model
    if model is None:
        model = model_from_args(args, lambda text: print(text, file=sys.stderr))
    adapter = offline_adapter(
        model, raw.unwrap(), args.adapter, args.strategy, parse_init_args(args.adapter_cfg), args.max_depth
    )
    resolved, found = check_offline(adapter, allowed_prefixes=args.allowed_class_prefix)
    return resolved, found, model


def _as_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "severity": diagnostic.severity.value,
        "code": diagnostic.code,
        "file": diagnostic.source,
        "line": diagnostic.position.line if diagnostic.position else None,
        "column": diagnostic.position.column if diagnostic.position else None,
        "location": str(diagnostic.location),
        "path": list(diagnostic.location.path),
        "message": diagnostic.message,
        "hint": diagnostic.hint,
    }


def _summary(path: Path, resolved: ResolvedSchedule | None, found: Diagnostics, model: Any) -> str:
    errors, warnings = len(errors_only(found)), len(warnings_only(found))
    if resolved is None or errors:
        return f"{path}: invalid: {errors} error(s), {warnings} warning(s)"
    params = sum(len(phase.names) for phase in resolved.phases)
    total = len(inventory(model).names) if model is not None else params
    return (
        f"{path}: valid: {len(resolved.phases)} phase(s) thawing {params} of {total} parameter tensors, "
        f"{warnings} warning(s)"
    )


def run(args: argparse.Namespace) -> int:
    model: Any = None
    documents, any_invalid = [], False
    for schedule in args.schedules:
        resolved, found, model = resolve_for(args, schedule, model)  # the model is built once
        invalid = resolved is None or bool(errors_only(found))
        any_invalid = any_invalid or invalid
        if args.format == "json":
            documents.append(
                {
                    "file": str(schedule),
                    "valid": not invalid,
                    "errors": len(errors_only(found)),
                    "warnings": len(warnings_only(found)),
                    "diagnostics": [_as_json(diagnostic) for diagnostic in found],
                }
            )
            continue
        for diagnostic in found:
            print(diagnostic.render())
        print(_summary(schedule, resolved, found, model))
    if args.format == "json":
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=1))
    return 1 if any_invalid else 0


__all__ = ["SUMMARY", "add_arguments", "add_schedule_arguments", "resolve_for", "run"]
