"""``python -m benchmarks``: the performance benchmarks, side by side with FTS 2.14.1 and plain Lightning.

Sections (``--only`` picks some): ``setup`` (extra wall time of a one-epoch fit with the scheduler, by model size
and schedule kind), ``transition`` (one phase change by size), ``steps`` (steps/s with and without the scheduler),
``translation`` (a 100k-key state dict to schedule names and back; ours only), ``memory`` (phase-0 peak against a
full fine-tune and a hand-frozen run), and ``core`` (the pure core's generate/validate timings).

Prints the tables and writes ``benchmarks/results/perf-<UTC stamp>.json`` and ``perf-latest.json``. Measures,
never asserts: the exit status is 0 whether or not a target is met. The reference venv
(``benchmarks/parity/_work/fts-venv``) is created on first use.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from .perf import report as perf_report
from .perf import runner
from .setup_cost import Measurement, measure

RESULTS = Path(__file__).parent / "results"
SECTIONS = ("setup", "transition", "steps", "translation", "memory", "core")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(runner.SIZES), help="parameter tensors")
    parser.add_argument(
        "--transition-sizes", type=int, nargs="+", default=list(runner.TRANSITION_SIZES), help="for the transitions"
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions per measurement (best reported)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON results")
    parser.add_argument("--sides", default="ours,fts", help="ours, fts or both (plain Lightning always runs)")
    parser.add_argument("--fts-python", type=Path, default=None, help="an interpreter with FTS 2.14.1 installed")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per epoch of the steps/s section")
    parser.add_argument("--keys", type=int, default=100_000, help="state-dict keys of the translation section")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per side process")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    args.sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not set(args.sides) <= set(runner.SIDES) or "ours" not in args.sides:
        parser.error(f"--sides must include 'ours' and be drawn from {list(runner.SIDES)}, got {args.sides}")
    return args


def _core(runs: int) -> list[dict[str, Any]]:
    found: list[Measurement] = measure(runs=runs)
    baselines = {(m.scenario, m.size): m.best for m in found}
    return [m.as_row(baselines) for m in found]


def _core_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'scenario':<40} {'params':>7} {'best s':>8} {'median s':>8} {'target s':>8}  met"]
    for row in rows:
        target = "" if row["target"] is None else f"{row['target']:g}"
        met = {None: "", True: "yes", False: "NO"}[row["target_met"]]
        lines.append(
            f"{row['scenario']:<40} {row['params']:>7} {row['best']:>8.4f} {row['median']:>8.4f} {target:>8}  {met}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    pythons = runner.side_pythons(args.sides, args.fts_python)
    report: dict[str, Any] = {"machine": runner.machine(), "sides": {k: str(v) for k, v in pythons.items()}}
    sections = {
        "setup": lambda: runner.setup_overhead(pythons, args.sizes, args.runs, args.timeout),
        "transition": lambda: runner.transitions(pythons, args.transition_sizes, args.runs, args.timeout),
        "steps": lambda: runner.step_rates(pythons, max(args.runs, 5), args.steps, args.timeout),
        "translation": lambda: runner.translation(args.keys),
        "memory": lambda: runner.memory(pythons, args.timeout),
        "core": lambda: _core(args.runs),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        report[name] = sections[name]()
        # Kept after every section: a long run stopped halfway still leaves what it measured.
        (args.out / "perf-partial.json").write_text(json.dumps(report, indent=1) + "\n")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["machine"]["load_average_after"] = runner.machine()["load_average"]
    print("\n" + perf_report.render(report))
    if "core" in report:
        print("\nPure core (no Lightning, no torch module)\n" + _core_table(report["core"]))
    machine = report["machine"]
    print(f"\n{machine['python']} on {machine['platform']}, {machine['cpus']} CPUs, load {machine['load_average']}")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report["when"] = stamp
    for path in (args.out / f"perf-{stamp}.json", args.out / "perf-latest.json"):
        path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written: {args.out / f'perf-{stamp}.json'} (and perf-latest.json), {report['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
