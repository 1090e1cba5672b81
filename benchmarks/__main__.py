"""``python -m benchmarks [--sizes 10000 100000] [--runs 5]``: time the core's setup work, print a table, write JSON.

Measures, never asserts: the exit status is 0 whether or not a target is met.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from .setup_cost import SIZES, Measurement, measure

RESULTS = Path(__file__).parent / "results"


def _table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'scenario':<40} {'params':>7} {'best s':>8} {'median s':>8} {'gc-on s':>8} "
        f"{'x baseline':>10} {'target s':>8}  met"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = "" if row["ratio_to_baseline"] is None else f"{row['ratio_to_baseline']:.2f}"
        target = "" if row["target"] is None else f"{row['target']:g}"
        met = {None: "", True: "yes", False: "NO"}[row["target_met"]]
        lines.append(
            f"{row['scenario']:<40} {row['params']:>7} {row['best']:>8.4f} {row['median']:>8.4f} "
            f"{row['best_collector_on']:>8.4f} {ratio:>10} {target:>8}  {met}"
        )
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        # Other work on the machine inflates timings; the load average says how busy it was.
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="inventory sizes (parameters)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per scenario (best and median reported)")
    args = parser.parse_args(argv)

    found: list[Measurement] = measure(tuple(args.sizes), args.runs)
    baselines = {(m.scenario, m.size): m.best for m in found}
    rows = [m.as_row(baselines) for m in found]
    print(_table(rows))

    machine = _machine()
    print(f"\n{machine['implementation']} {machine['python']}, {machine['cpus']} CPUs, load {machine['load_average']}")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {"benchmark": "core setup cost", "when": stamp, "machine": machine, "results": rows}
    RESULTS.mkdir(exist_ok=True)
    for path in (RESULTS / f"setup_cost-{stamp}.json", RESULTS / "setup_cost-latest.json"):
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {RESULTS / f'setup_cost-{stamp}.json'} (and setup_cost-latest.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
