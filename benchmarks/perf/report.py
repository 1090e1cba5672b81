"""Tables and target checks for the whole-fit benchmarks (plain text that is also Markdown)."""

from __future__ import annotations

from typing import Any

MB = 1024 * 1024


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _by(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in keys): row for row in rows}


def setup_table(rows: list[dict[str, Any]]) -> str:
    """One line per size and schedule: each side's plain and scheduled fit, overhead, µs per tensor, ratio."""
    found = _by(rows, "side", "size", "schedule")
    keys = sorted({(row["size"], row["schedule"]) for row in rows})
    lines = []
    for size, schedule in keys:
        ours, fts = found.get(("ours", size, schedule), {}), found.get(("fts", size, schedule), {})
        cells = [f"{size:,}", schedule]
        for side in (ours, fts):
            if "overhead" in side:
                per_tensor = side["overhead"] / side["params"] * 1e6
                cells += [_s(side["plain_best"]), _s(side["scheduler_best"]), _s(side["overhead"]), f"{per_tensor:.1f}"]
            else:
                cells += [side.get("error", "not run")[:40], "", "", ""]
        ratio = ours["overhead"] / fts["overhead"] if "overhead" in ours and "overhead" in fts else None
        cells.append("" if ratio is None or fts["overhead"] <= 0 else f"1/{1 / ratio:.0f}" if ratio > 0 else "< 0")
        lines.append(cells)
    header = ["tensors", "schedule", "ours plain s", "ours fit s", "ours extra s", "ours us/tensor"]
    header += ["FTS plain s", "FTS fit s", "FTS extra s", "FTS us/tensor", "ours/FTS"]
    return _table(header, lines)


def transition_table(rows: list[dict[str, Any]]) -> str:
    found = _by(rows, "side", "size")
    lines = []
    for size in sorted({row["size"] for row in rows}):
        cells = [f"{size:,}"]
        for side in ("ours", "fts"):
            row = found.get((side, size), {})
            cells += [_s(row["best"]), _s(min(row["steady_seconds"]))] if "best" in row else [row.get("error", ""), ""]
        lines.append(cells)
    return _table(["tensors", "ours transition s", "ours steady s", "FTS transition s", "FTS steady s"], lines)


def steps_table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        if "error" in row:
            lines.append([row["side"], row["error"], "", "", ""])
            continue
        best_plain, best_scheduled = max(row["plain"]), max(row["scheduler"])
        ratios = [f"{row['ratio_best']:.3f}", f"{row['ratio_median']:.3f}"]
        lines.append([row["side"], f"{best_plain:.0f}", f"{best_scheduled:.0f}", *ratios])
    return _table(["side", "plain steps/s", "scheduler steps/s", "ratio (best)", "ratio (median pair)"], lines)


def memory_table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        if "error" in row:
            lines.append([row["side"], row["mode"], row["error"], "", "", "", "", "", ""])
            continue
        expected = row["trainable_bytes"] * 3  # a gradient and AdamW's two moments per trainable element
        lines.append(
            [
                row["side"],
                row["mode"],
                f"{row['weights_bytes'] / MB:.0f}",
                f"{row['rss_before_kib'] / 1024:.0f}",
                f"{row['peak_extra_bytes'] / MB:.1f}",
                f"{expected / MB:.1f}",
                f"{row['peak_extra_with_checkpoint_bytes'] / MB:.1f}",
                str(row["frozen_with_grad"]),
                str(row["frozen_with_optimizer_state"]),
            ]
        )
    header = ["side", "run", "weights MB", "RSS before fit MB", "training peak over it MB"]
    header += ["grads+AdamW of trainable MB", "with checkpoint write MB", "frozen with grad", "frozen with opt state"]
    return _table(header, lines)


def translation_lines(result: dict[str, Any]) -> str:
    return (
        f"{result['keys']:,} keys: name map {result['name_map_seconds'] * 1e3:.1f} ms, to schedule names "
        f"{result['to_view_seconds'] * 1e3:.1f} ms, back {result['back_seconds'] * 1e3:.1f} ms; "
        f"{result['renamed']:,} keys renamed, round trip exact: {result['round_trip_keys_equal']}, "
        f"tensor bytes copied: {result['copied_bytes']}"
    )


def targets(report: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """``(target, measured, met)`` for every target the issue names that this run measured."""
    found: list[tuple[str, str, bool | None]] = []
    setup = _by(report.get("setup", []), "side", "size", "schedule")
    for schedule in ("implicit", "regex"):
        ours, fts = setup.get(("ours", 8000, schedule), {}), setup.get(("fts", 8000, schedule), {})
        if "overhead" in ours and "overhead" in fts:
            measured = f"{ours['overhead']:.3f} s vs FTS {fts['overhead']:.3f} s"
            found.append(
                (f"8k tensors, {schedule}: overhead <= FTS/20", measured, ours["overhead"] * 20 <= fts["overhead"])
            )
        big = setup.get(("ours", 100_000, schedule), {})
        if "overhead" in big:
            found.append((f"100k tensors, {schedule}: overhead < 1 s", f"{big['overhead']:.3f} s", big["overhead"] < 1))
    for row in report.get("steps", []):
        if row["side"] == "ours" and "ratio_best" in row:
            found.append(("steps/s ratio to plain >= 0.98", f"{row['ratio_best']:.3f}", row["ratio_best"] >= 0.98))
    if "translation" in report:
        t = report["translation"]
        found.append(
            ("100k-key translation < 50 ms", f"{t['to_view_seconds'] * 1e3:.1f} ms", t["to_view_seconds"] < 0.05)
        )
        found.append(("zero tensor bytes copied", str(t["copied_bytes"]), t["copied_bytes"] == 0))
    memory = _by(report.get("memory", []), "side", "mode")
    ideal, ours_memory = memory.get(("plain", "frozen"), {}), memory.get(("ours", "scheduler"), {})
    if "peak_extra_bytes" in ideal and "peak_extra_bytes" in ours_memory:
        ideal_peak = ideal["rss_before_kib"] * 1024 + ideal["peak_extra_bytes"]
        ours_peak = ours_memory["rss_before_kib"] * 1024 + ours_memory["peak_extra_bytes"]
        share = ours_peak / ideal_peak - 1
        clean = not ours_memory["frozen_with_grad"] and not ours_memory["frozen_with_optimizer_state"]
        measured = f"peak RSS {ours_peak / MB:.0f} MB vs {ideal_peak / MB:.0f} MB frozen by hand ({share:+.1%}); "
        measured += f"frozen tensors with grad/state: {ours_memory['frozen_with_grad']}/"
        measured += str(ours_memory["frozen_with_optimizer_state"])
        found.append(("phase-0 peak within 3% of the hand-frozen fit", measured, share <= 0.03 and clean))
    return found


def render(report: dict[str, Any]) -> str:
    parts = []
    if "setup" in report:
        parts += [
            "Setup overhead (one-epoch fit, best of the runs; extra = with the scheduler - without)",
            setup_table(report["setup"]),
        ]
    if "transition" in report:
        parts += [
            "Phase transition (epoch-start hooks: thaw, groups, LR schedulers, restore best)",
            transition_table(report["transition"]),
        ]
    if "steps" in report:
        parts += [
            "Per-step overhead (4x Linear(64, 64) MLP, one phase holding every parameter)",
            steps_table(report["steps"]),
        ]
    if "translation" in report:
        parts += [
            "State-dict translation (ours; FTS has no name translation)",
            translation_lines(report["translation"]),
        ]
    if "memory" in report:
        parts += [
            "Phase-0 peak memory (16x Linear(2048, 2048) + head, AdamW, batch 8; phase 0 = last layer + head)",
            memory_table(report["memory"]),
        ]
    checks = targets(report)
    if checks:
        rows = [[name, measured, {True: "yes", False: "NO", None: ""}[met]] for name, measured, met in checks]
        parts += ["Targets", _table(["target", "measured", "met"], rows)]
    return "\n\n".join(parts)
