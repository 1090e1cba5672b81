"""Run the whole-fit benchmarks side by side (this project, FTS 2.14.1, plain Lightning) and summarise them.

Every figure comes from :mod:`benchmarks.perf._side` run in a fresh process of the side's own venv; the runner
only schedules the processes, collects their JSON lines and computes the ratios. It measures and never asserts:
the exit status is 0 whether or not a target is met (the table says which are).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..parity.run import WORK, ensure_fts_venv
from ..parity.run import _side_env as side_env

SIDE_SCRIPT = Path(__file__).parent / "_side.py"
SIDES = ("ours", "fts")
SIZES = (1_000, 8_000, 50_000, 100_000)
TRANSITION_SIZES = (1_000, 8_000, 50_000)  # each run is a whole fit first: FTS's setup alone takes minutes at 100k
SCHEDULES = ("implicit", "regex")
LARGE = 20_000  # from this size on the reference side runs once: its fits take minutes (its cost is quadratic)


def side_pythons(sides: Sequence[str], fts_python: Path | None) -> dict[str, Path]:
    """The interpreter of each side: the project venv, and FTS's (created on first use)."""
    ours = Path(sys.executable)  # the interpreter running the benchmarks: the project's venv
    found = {"ours": ours}
    if "fts" in sides:
        found["fts"] = fts_python or ensure_fts_venv(ours)
    return {side: found[side] for side in sides}


def run_task(side: str, python: Path, task: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One task in a fresh process of ``side``; its result, or ``{"error": ...}`` when it failed or timed out."""
    cwd = WORK / "cwd" / side  # outside the checkout, so that nothing there shadows the side's package
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(python), str(SIDE_SCRIPT), json.dumps(task)],
            cwd=cwd,
            env=side_env(side),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    result: dict[str, Any] = json.loads(lines[-1])
    result["process_seconds"] = round(time.perf_counter() - started, 1)
    return result


def _progress(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def setup_overhead(pythons: dict[str, Path], sizes: Sequence[int], runs: int, timeout: float) -> list[dict[str, Any]]:
    """Extra wall time of a one-epoch fit with the scheduler over the same fit without (best of the runs each)."""
    rows = []
    for size in sizes:
        for schedule in SCHEDULES:
            for side, python in pythons.items():
                side_runs = 1 if side == "fts" and size >= LARGE else runs
                _progress(f"setup overhead: {side}, {size:,} tensors, {schedule} schedule, {side_runs} run(s)")
                task = {"task": "fit", "size": size, "schedule": schedule, "runs": side_runs}
                rows.append({"side": side, "size": size, "schedule": schedule, **run_task(side, python, task, timeout)})
    return [_with_overhead(row) for row in rows]


def _with_overhead(row: dict[str, Any]) -> dict[str, Any]:
    if "error" in row:
        return row
    plain, scheduled = min(row["plain"]), min(row["scheduler"])
    overhead = scheduled - plain
    return {**row, "plain_best": plain, "scheduler_best": scheduled, "overhead": overhead}


def transitions(pythons: dict[str, Path], sizes: Sequence[int], runs: int, timeout: float) -> list[dict[str, Any]]:
    """The epoch-start hooks of the epoch that enters phase 1 of the regex schedule (best of the runs)."""
    rows = []
    for size in sizes:
        for side, python in pythons.items():
            side_runs = 1 if side == "fts" and size >= LARGE else runs
            _progress(f"transition: {side}, {size:,} tensors, {side_runs} run(s)")
            result = run_task(side, python, {"task": "transition", "size": size, "runs": side_runs}, timeout)
            if "error" not in result:
                result["best"] = min(result["seconds"])
            rows.append({"side": side, "size": size, **result})
    return rows


def step_rates(pythons: dict[str, Path], runs: int, batches: int, timeout: float) -> list[dict[str, Any]]:
    """Steps/s with and without the scheduler, interleaved in one process per side."""
    rows = []
    for side, python in pythons.items():
        _progress(f"steps/s: {side}, {runs} pair(s) of {batches}-step epochs")
        result = run_task(side, python, {"task": "steps", "batches": batches, "runs": runs}, timeout)
        if "error" not in result:
            result["ratio_best"] = max(result["scheduler"]) / max(result["plain"])
            pairs = sorted(s / p for s, p in zip(result["scheduler"], result["plain"], strict=True))
            result["ratio_median"] = pairs[len(pairs) // 2]
        rows.append({"side": side, **result})
    return rows


def memory(pythons: dict[str, Path], timeout: float) -> list[dict[str, Any]]:
    """Peak RSS over the weights of a one-epoch fit: full fine-tune, ideal phase 0 (plain, frozen by hand), and
    phase 0 under each scheduler; every figure from its own process."""
    ours = pythons["ours"]
    plans: list[tuple[str, str, Path]] = [("plain", "full", ours), ("plain", "frozen", ours)]
    plans += [(side, "scheduler", python) for side, python in pythons.items()]
    rows = []
    for side, mode, python in plans:
        _progress(f"phase-0 memory: {side}, {mode}")
        rows.append({"side": side, "mode": mode, **run_task(side, python, {"task": "memory", "mode": mode}, timeout)})
    return rows


def translation(keys: int = 100_000, runs: int = 5) -> dict[str, Any]:
    """Re-key a ``keys``-entry state dict of a compiled model (``_orig_mod.`` prefixes) to schedule names and back:
    best time of each direction, and the bytes of tensors copied (values compared by identity and storage)."""
    import torch

    from finetuning_scheduler.core import unwrapped_name_map
    from finetuning_scheduler.shell.lightning._naming import state_dict_for_module, state_dict_to_view

    names = [f"_orig_mod.model.layers.{i // 1000}.experts.{i % 1000}.weight" for i in range(keys)]
    state = {name: torch.zeros(4) for name in names}
    start = time.perf_counter()
    name_map = unwrapped_name_map(names).unwrap()
    build = time.perf_counter() - start
    to_view = _best(lambda: state_dict_to_view(state, name_map), runs)
    viewed = state_dict_to_view(state, name_map)
    back = _best(lambda: state_dict_for_module(viewed, names), runs)
    restored = state_dict_for_module(viewed, names)
    copied = _copied_bytes(state, viewed.values()) + _copied_bytes(state, restored.values())
    return {
        "keys": keys,
        "name_map_seconds": build,
        "to_view_seconds": to_view,
        "back_seconds": back,
        "renamed": sum(a != b for a, b in zip(state, viewed, strict=True)),
        "round_trip_keys_equal": list(restored) == names,
        "copied_bytes": copied,
    }


def _best(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def _copied_bytes(original: dict[str, Any], values: Any) -> int:
    """Bytes of the values that are not one of ``original``'s tensors (same object, same storage)."""
    by_id = {id(t): t for t in original.values()}
    return sum(
        value.numel() * value.element_size()
        for value in values
        if id(value) not in by_id or value.data_ptr() != by_id[id(value)].data_ptr()
    )


def machine() -> dict[str, Any]:
    import platform

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
