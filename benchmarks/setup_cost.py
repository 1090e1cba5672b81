"""Setup cost of the pure core on large models: generation and validation, against baselines from the same run.

Scenarios, for each inventory size:

- ``generate + validate implicit``: what setup does without a schedule (FTS's implicit schedule, two parameters per
  phase, so 50k phases for 100k parameters). Target: under 0.1 s at 100k.
- ``validate 50-regex schedule``: a hand-written 23-phase schedule of 50 regexes. Target: under 1 s at 100k.
- ``resolve_yaml 50-regex schedule``: the same from YAML text (parse, structure, validate), as the callback does.
- Baselines: a dict over the names (the floor for anything linear) and FTS's own way of resolving regexes (every
  entry ``re.match``-ed against every name), so the figures read as ratios as well as seconds.
"""

from __future__ import annotations

import gc
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import attrs

from finetuning_scheduler.core import (
    ParamInventory,
    Schedule,
    dump_schedule,
    generate,
    resolve_yaml,
    validate,
)

from .models import inventory, regex_schedule

SIZES = (10_000, 100_000)
TARGETS = {("generate + validate implicit", 100_000): 0.1, ("validate 50-regex schedule", 100_000): 1.0}


@attrs.frozen
class Measurement:
    """Timings of one scenario at one size (seconds).

    ``best`` and ``median`` run as the shell calls the core: with the cyclic garbage collector paused around the
    call (``shell.engine.collector_paused``; the pure core leaves that process-wide switch to its caller).
    ``best_collector_on`` is the same call made bare, as an embedding trainer that does not pause it would see;
    the difference depends on everything else the process holds.
    """

    scenario: str
    size: int
    params: int
    best: float
    median: float
    best_collector_on: float
    runs: int
    baseline: str | None = None
    target: float | None = None

    def as_row(self, baselines: dict[tuple[str, int], float]) -> dict[str, Any]:
        ratio = self.best / baselines[(self.baseline, self.size)] if self.baseline else None
        met = None if self.target is None else self.best < self.target
        return {**attrs.asdict(self), "ratio_to_baseline": ratio, "target_met": met}


def time_it(work: Callable[[], object], runs: int, collect: bool = True) -> list[float]:
    """Wall times of ``runs`` calls, each after a collection so earlier garbage is not billed."""
    found = []
    for _ in range(runs):
        gc.collect()
        if not collect:
            gc.disable()
        start = time.perf_counter()
        work()
        found.append(time.perf_counter() - start)
        gc.enable()
    return found


def _fts_scan(schedule: Schedule, names: tuple[str, ...]) -> list[list[str]]:
    """FTS's resolution: for every entry, ``re.match`` against every name (no exact-name shortcut needed here)."""
    return [
        [name for entry in phase.params for pattern in (re.compile(entry),) for name in names if pattern.match(name)]
        for phase in schedule.phases
    ]


def scenarios(model: ParamInventory) -> list[tuple[str, Callable[[], object], str | None]]:
    """``(name, work, baseline name)`` for one model."""
    regexes = regex_schedule()
    text = dump_schedule(regexes)
    names = model.names
    return [
        ("baseline: dict over names", lambda: {name: i for i, name in enumerate(names)}, None),
        ("baseline: FTS re.match scan, 50 regexes", lambda: _fts_scan(regexes, names), None),
        ("generate implicit", lambda: generate(model), "baseline: dict over names"),
        ("validate implicit", _validate_generated(model), "baseline: dict over names"),
        ("generate + validate implicit", lambda: validate(generate(model), model), "baseline: dict over names"),
        ("validate 50-regex schedule", lambda: validate(regexes, model), "baseline: FTS re.match scan, 50 regexes"),
        (
            "resolve_yaml 50-regex schedule",
            lambda: resolve_yaml(text, model),
            "baseline: FTS re.match scan, 50 regexes",
        ),
    ]


def _validate_generated(model: ParamInventory) -> Callable[[], object]:
    schedule = generate(model)
    return lambda: validate(schedule, model)


def measure(sizes: tuple[int, ...] = SIZES, runs: int = 5) -> list[Measurement]:
    """Run every scenario at every size."""
    found = []
    for size in sizes:
        model = inventory(size)
        for name, work, baseline in scenarios(model):
            work()  # warm up: regex cache, imports, lazy indexes of this process
            timed, collector_on = time_it(work, runs, collect=False), time_it(work, runs)
            best, median = min(timed), statistics.median(timed)
            target = TARGETS.get((name, size))
            found.append(
                Measurement(name, size, len(model.names), best, median, min(collector_on), runs, baseline, target)
            )
    return found
