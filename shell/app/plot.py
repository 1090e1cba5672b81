"""``plot RUN_DIR_OR_TRACE [-o FILE.png]``: a run's phases at a glance, from the trace the callback writes.

Three panels over epochs: the phase (shaded spans, labelled with why each phase ended) and the trainable share of
the model; each param group's learning rate (log scale); the monitored metric. Needs matplotlib (the ``plot``
extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ._models import UsageError

SUMMARY = "draw a run's phases, trainable share, learning rates and monitored metric from its trace"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("run", type=Path, metavar="RUN_DIR_OR_TRACE", help="a log_dir, or its *_ft_trace.json")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE.png", help="default: beside the trace")
    return parser


def find_trace(run: Path) -> Path:
    """The trace file itself, or the one trace in a run folder (searched below it too, for logger subfolders)."""
    if run.is_file():
        return run
    if not run.is_dir():
        raise UsageError(f"{str(run)!r} is neither a trace file nor a folder")
    found = sorted(run.rglob("*_ft_trace.json"), key=lambda path: path.stat().st_mtime)
    if not found:
        raise UsageError(f"no *_ft_trace.json under {str(run)!r}: is it a fine-tuning run's log_dir?")
    return found[-1]  # the most recent run


def read_trace(path: Path) -> list[dict[str, Any]]:
    """The trace's epochs (the callback's ``{Module}_ft_trace.json``, or the demo's ``trace.json``)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the trace {str(path)!r}: {exc}") from exc
    epochs = document.get("epochs") if isinstance(document, dict) else None
    if not isinstance(epochs, list) or not epochs:
        raise UsageError(f"{str(path)!r} has no epochs to plot")
    return [_normalised(entry) for entry in epochs]


def _normalised(entry: dict[str, Any]) -> dict[str, Any]:
    """The demo's rows name things a little differently; give both one shape."""
    return {
        "epoch": int(entry["epoch"]),
        "depth": int(entry.get("depth", entry.get("phase", 0))),
        "reason": entry.get("reason"),
        "trainable_share": float(entry.get("trainable_share", 0.0)),
        "lrs": [float(lr) for lr in entry.get("lrs", [])],
        "monitor": entry.get("monitor") or ("val_loss" if "val_loss" in entry else None),
        "value": entry.get("value", entry.get("val_loss")),
    }


def phase_spans(epochs: list[dict[str, Any]]) -> list[tuple[int, int, int, str]]:
    """``(depth, first epoch, last epoch, how it ended)`` for each phase in the trace.

    >>> rows = [{"epoch": 0, "depth": 0, "reason": None},
    ...         {"epoch": 1, "depth": 1, "reason": "max_transition_epoch reached"},
    ...         {"epoch": 2, "depth": 1, "reason": None}]
    >>> phase_spans(rows)
    [(0, 0, 0, 'max_transition_epoch reached'), (1, 1, 2, 'end of training')]
    """
    spans: list[tuple[int, int, int, str]] = []
    for row in epochs:
        if spans and spans[-1][0] == row["depth"]:
            depth, first, _, ended = spans[-1]
            spans[-1] = (depth, first, row["epoch"], ended)
        else:
            if spans:  # the reason recorded at a phase's first epoch is why the previous one ended
                depth, first, last, _ = spans[-1]
                spans[-1] = (depth, first, last, str(row["reason"] or "phase change"))
            spans.append((row["depth"], row["epoch"], row["epoch"], "end of training"))
    return spans


def draw(epochs: list[dict[str, Any]], title: str, output: Path) -> Path:
    """Write the picture; returns its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError("plot needs matplotlib: pip install 'finetuning-scheduler-fc[plot]'") from exc
    xs = [row["epoch"] for row in epochs]
    figure, (phases, lrs, metric) = plt.subplots(3, 1, sharex=True, figsize=(10, 7.5), height_ratios=(1.2, 1, 1))
    colours = plt.get_cmap("tab10")
    for depth, first, last, ended in phase_spans(epochs):
        for axis in (phases, lrs, metric):
            axis.axvspan(first - 0.5, last + 0.5, color=colours(depth % 10), alpha=0.12, linewidth=0)
        phases.text((first + last) / 2, 1.02, f"phase {depth}", ha="center", va="bottom", fontsize=9)
        phases.text(last + 0.45, 0.5, ended.split(":")[0], rotation=90, ha="right", va="center", fontsize=7, alpha=0.7)
    phases.step(xs, [row["trainable_share"] for row in epochs], where="mid", color="black")
    phases.set_ylim(0, 1.15)
    phases.set_ylabel("trainable share")
    groups = max(len(row["lrs"]) for row in epochs)
    for group in range(groups):
        points = [
            (row["epoch"], row["lrs"][group]) for row in epochs if len(row["lrs"]) > group and row["lrs"][group] > 0
        ]
        if points:
            lrs.plot(*zip(*points, strict=True), marker="o", markersize=3, label=f"group {group}")
    lrs.set_yscale("log")
    lrs.set_ylabel("learning rate")
    lrs.legend(fontsize=7, ncol=min(groups, 6), loc="lower left")
    values = [(row["epoch"], row["value"]) for row in epochs if isinstance(row["value"], int | float)]
    if values:
        metric.plot(*zip(*values, strict=True), marker="o", markersize=3, color="tab:red")
    metric.set_ylabel(next((row["monitor"] for row in epochs if row["monitor"]), "monitored metric"))
    metric.set_xlabel("epoch")
    figure.suptitle(title)
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    plt.close(figure)
    return output


def run(args: argparse.Namespace) -> int:
    trace = find_trace(args.run)
    epochs = read_trace(trace)
    output = args.output or trace.with_suffix(".png")
    title = f"{trace.name}: {len(phase_spans(epochs))} phase(s) over {len(epochs)} epoch(s)"
    print(f"wrote {draw(epochs, title, output)}", file=sys.stderr)
    return 0


__all__ = ["SUMMARY", "add_arguments", "draw", "find_trace", "phase_spans", "read_trace", "run"]
