"""``plan SCHEDULE --model REF``: what each phase will do, before any GPU hour is spent.

Per phase: the parameters it thaws and their share of the model, the param group it adds and its lr, what ends
the phase, optimizer or LR-scheduler changes, and the optimizer-state memory the phase adds (Adam-like optimizers
keep two tensors per trainable element: ``--state-per-param``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

from finetuning_scheduler.core import ResolvedPhase, ResolvedSchedule, errors_only

from ..engine import inventory
from .validate import add_schedule_arguments, resolve_for

SUMMARY = "show, per phase, what a schedule thaws, its lrs, triggers and the optimizer-state memory it adds"


def _itemsize(dtype_name: str) -> int:
    """Bytes per element of a dtype named as the inventory names it (``float32``, ``bfloat16``, ...)."""
    dtype = getattr(torch, dtype_name, None)
    return dtype.itemsize if isinstance(dtype, torch.dtype) else 4


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_schedule_arguments(parser)
    parser.add_argument("--state-per-param", type=float, default=2.0, help="optimizer state tensors per element")
    parser.add_argument("--plain", action="store_true", help="plain text output, even when rich is installed")
    return parser


def _size(n_bytes: float) -> str:
    """A byte count as people read it.

    >>> _size(512), _size(8448), _size(3 * 2**30)
    ('512 B', '8.2 KiB', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} TiB"


def _trigger(phase: ResolvedPhase, last: bool) -> str:
    if last:
        return "the last phase: early stopping or max_epochs"
    if phase.max_transition_epoch >= 0:
        return f"early stopping, or epoch {phase.max_transition_epoch} at the latest"
    return "early stopping"


def _changes(phase: ResolvedPhase) -> str:
    changes = []
    if phase.new_optimizer is not None:
        changes.append(f"new optimizer {phase.new_optimizer.optimizer_init.class_path}")
    if phase.new_lr_scheduler is not None:
        changes.append(f"new LR scheduler {phase.new_lr_scheduler.lr_scheduler_init.class_path}")
    return "; ".join(changes) or "-"


def plan_rows(resolved: ResolvedSchedule, model: Any, state_per_param: float) -> list[dict[str, Any]]:
    """One row per phase that will run (up to ``max_depth``)."""
    params = inventory(model)
    numel = dict(zip(params.names, params.numels, strict=True))
    dtype = dict(zip(params.names, params.dtypes, strict=True))
    total = sum(params.numels) or 1
    rows, cumulative = [], 0
    last = resolved.max_depth
    for depth, phase in enumerate(resolved.phases[: last + 1]):
        elements = sum(numel.get(name, 0) for name in phase.names)
        state = sum(numel.get(name, 0) * _itemsize(dtype.get(name, "")) for name in phase.names)
        cumulative += elements
        rows.append(
            {
                "phase": depth,
                "tensors": len(phase.names),
                "elements": elements,
                "share": elements / total,
                "trainable_share": cumulative / total,
                "lr": "optimizer's own" if phase.lr is None else f"{phase.lr:g}",
                "ends_by": _trigger(phase, depth == last),
                "changes": _changes(phase),
                "state_bytes": state * state_per_param,
                "first": phase.names[0] if phase.names else "",
            }
        )
    return rows


def _print(rows: list[dict[str, Any]], plain: bool) -> None:
    headers = ("phase", "thaws", "share", "trainable", "new group lr", "ends by", "optimizer state +", "changes")
    cells = [
        (
            str(row["phase"]),
            f"{row['tensors']} tensors ({row['elements']:,} el.), e.g. {row['first']}",
            f"{row['share']:.1%}",
            f"{row['trainable_share']:.1%}",
            row["lr"],
            row["ends_by"],
            _size(row["state_bytes"]),
            row["changes"],
        )
        for row in rows
    ]
    try:
        if plain:
            raise ImportError
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        for line in (headers, *cells):
            print("  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip())
        return
    table = Table(title="fine-tuning plan")
    for header in headers:
        table.add_column(header)
    for line in cells:
        table.add_row(*line)
    Console().print(table)


def run(args: argparse.Namespace) -> int:
    resolved, found, model = resolve_for(args)
    if resolved is None or errors_only(found):
        for diagnostic in found:
            print(diagnostic.render(), file=sys.stderr)
        print(f"{args.schedule}: invalid; run `validate` for the details", file=sys.stderr)
        return 1
    _print(plan_rows(resolved, model, args.state_per_param), args.plain)
    return 0


__all__ = ["SUMMARY", "add_arguments", "plan_rows", "run"]
