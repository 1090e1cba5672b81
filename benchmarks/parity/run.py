"""Parity harness: run the same scenarios under the reference FTS and under this project, diff the traces.

Usage (from the repository root)::

    python -m benchmarks.parity                 # both sides, all scenarios
    python -m benchmarks.parity --only fts      # only the reference side (checks it against fts_behavior.md §8)
    python benchmarks/parity/run.py --scenarios implicit,explicit_file

The reference side runs in a private venv, ``benchmarks/parity/_work/fts-venv`` (git-ignored), created on first use
with ``finetuning-scheduler==2.14.1`` constrained by the repository's ``constraints.txt`` (the CPU torch) and the
same Lightning version as the project venv. The project side runs with ``.venv/bin/python`` and the checkout on
``PYTHONPATH``. Each side is one subprocess executing ``scenario.py`` (``--isolate``: one per scenario); the two
sides run in parallel. Traces land in ``_work/traces/<side>/<scenario>.json``; the report in ``_work/REPORT.md``
and ``_work/report.json`` (``--update-report`` writes the tracked ``REPORT.md`` and ``report.json`` beside this file
instead). This is a benchmark: it measures and reports; ``--fail-on-diff`` turns a
difference into exit status 1 for scripts that want it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WORK = HERE / "_work"
FTS_VENV = WORK / "fts-venv"
FTS_REQUIREMENT = "finetuning-scheduler==2.14.1"
FTS_LIGHTNING_PIN = "lightning>=2.6.0,<2.7.0"  # FTS 2.14's own pin
SCENARIO_SCRIPT = HERE / "scenario.py"
SIDES = ("fts", "ours")

# Fields compared between the two sides, in the order differences are looked for. `fts_private` (FTS internals
# recorded for the §8 checks) and `seconds`/`environment` are deliberately left out.
EPOCH_FIELDS = (
    "epoch",
    "curr_depth",
    "depth_remaining",
    "max_depth",
    "trainable",
    "param_groups",
    "optimizer",
    "global_step",
    "lr_scheduler",
    "early_stopping",
    "checkpoint",
    "val_loss",
)
END_FIELDS = (*EPOCH_FIELDS, "stop_epoch", "epochs_completed", "ft_schedule", "callbacks", "files", "weights")


# ---------------------------------------------------------------------------------------------------------------
# The reference venv
# ---------------------------------------------------------------------------------------------------------------


def _run_checked(cmd: Sequence[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}; see {log}")


def _project_lightning_version(ours_python: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(ours_python), "-c", "import importlib.metadata as m; print(m.version('lightning'))"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def ensure_fts_venv(ours_python: Path, reinstall: bool = False) -> Path:
    """Create the reference venv once; a stamp file records what was installed so later runs skip the install."""
    python = FTS_VENV / "bin" / "python"
    stamp = FTS_VENV / ".parity-installed"
    if python.exists() and stamp.exists() and not reinstall:
        return python
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / "fts-venv-install.log"
    log.write_text("")
    print(f"[parity] creating the reference venv {FTS_VENV} (log: {log})", flush=True)
    _run_checked([sys.executable, "-m", "venv", "--clear", str(FTS_VENV)], log)
    constraints = WORK / "constraints.txt"
    # The repository's constraints pin torch (a CPU build from the local wheel store, never a CUDA download);
    # pinning Lightning to the project venv's version keeps the two sides on the same trainer code.
    lines = (REPO / "constraints.txt").read_text().splitlines()
    lightning = _project_lightning_version(ours_python)
    if lightning:
        lines.append(f"lightning=={lightning}")
    constraints.write_text("\n".join(lines) + "\n")
    _run_checked(
        [str(python), "-m", "pip", "install", "-q", "-c", str(constraints), FTS_REQUIREMENT, FTS_LIGHTNING_PIN],
        log,
    )
    check = subprocess.run(
        [str(python), "-c", "import torch, finetuning_scheduler as f; print(torch.__version__, f.__version__)"],
        capture_output=True,
        text=True,
        check=False,
        cwd=WORK,  # outside the checkout: the reference side must see only its own venv
        env=_side_env("fts"),
    )
    if check.returncode != 0 or "+cpu" not in check.stdout or FTS_REQUIREMENT.split("==")[1] not in check.stdout:
        raise SystemExit(f"the reference venv is not as expected: {check.stdout}{check.stderr}")
    stamp.write_text(check.stdout)
    return python


# ---------------------------------------------------------------------------------------------------------------
# Running the scenarios
# ---------------------------------------------------------------------------------------------------------------


def _side_env(side: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    if side == "ours":
        # The checkout itself, so that modules added since the editable install are importable too.
        env["PYTHONPATH"] = str(REPO)
    return env


def run_side(side: str, python: Path, names: list[str], isolate: bool, timeout: float) -> dict[str, Any]:
    """Run ``scenario.py`` for one side; returns {"seconds", "returncode", "log"}."""
    out = WORK / "traces" / side
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        (out / f"{name}.json").unlink(missing_ok=True)
    log = WORK / f"{side}.log"
    log.write_text("")
    cwd = WORK / "cwd" / side  # neither the repository root nor benchmarks/: nothing there may shadow a package
    cwd.mkdir(parents=True, exist_ok=True)
    batches = [[n] for n in names] if isolate else [names]
    started = time.perf_counter()
    returncode = 0
    for batch in batches:
        cmd = [str(python), str(SCENARIO_SCRIPT), "--out", str(out), "--scenarios", ",".join(batch)]
        with log.open("a") as handle:
            try:
                proc = subprocess.run(
                    cmd, cwd=cwd, env=_side_env(side), stdout=handle, stderr=subprocess.STDOUT, timeout=timeout
                )
                returncode = returncode or proc.returncode
            except subprocess.TimeoutExpired:
                handle.write(f"\n[parity] timed out after {timeout} s\n")
                returncode = returncode or 124
    return {"seconds": round(time.perf_counter() - started, 1), "returncode": returncode, "log": str(log)}


def load_trace(side: str, name: str, side_run: dict[str, Any]) -> dict[str, Any]:
    path = WORK / "traces" / side / f"{name}.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    return {
        "status": "missing",
        "error": f"no trace written (exit status {side_run['returncode']}, see {side_run['log']})",
    }


# ---------------------------------------------------------------------------------------------------------------
# Diffing
# ---------------------------------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 90) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_difference(a: Any, b: Any, path: str) -> str | None:
    """The first place where ``a`` (FTS) and ``b`` (ours) differ, as ``path: fts=… ours=…``; exact equality."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            if key not in a or key not in b:
                return f"{path}.{key}: {'missing in fts' if key not in a else 'missing in ours'}"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path}: length fts={len(a)} ours={len(b)}"
        return None
    if a != b or type(a) is not type(b):
        return f"{path}: fts={_short(a)} ours={_short(b)}"
    return None


def _weights_difference(a: dict[str, Any], b: dict[str, Any], path: str) -> str | None:
    if a.get("sha256") == b.get("sha256"):
        return None
    ta, tb = a.get("tensors", {}), b.get("tensors", {})
    for name in ta:
        if name not in tb:
            return f"{path}: tensor {name} missing in ours"
        if ta[name]["sha256"] != tb[name]["sha256"]:
            va, vb = ta[name]["values"], tb[name]["values"]
            if len(va) != len(vb):
                return f"{path}: {name} has {len(va)} values in fts, {len(vb)} in ours"
            worst = max(abs(x - y) for x, y in zip(va, vb, strict=True))
            return f"{path}: {name} differs (max |fts-ours| = {worst:.3g})"
    return f"{path}: tensors differ (names: {sorted(set(tb) - set(ta))[:3]} only in ours)"


def _record_differences(a: dict[str, Any], b: dict[str, Any], fields: Sequence[str], path: str) -> list[str]:
    diffs = []
    for field in fields:
        where = f"{path}.{field}"
        if field == "weights":
            found = _weights_difference(a.get(field) or {}, b.get(field) or {}, where)
        else:
            found = first_difference(a.get(field), b.get(field), where)
        if found:
            diffs.append(found)
    return diffs


def _fit_differences(a: dict[str, Any], b: dict[str, Any], prefix: str) -> list[str]:
    diffs: list[str] = []
    ea, eb = a.get("epochs") or [], b.get("epochs") or []
    for ra, rb in zip(ea, eb, strict=False):
        diffs += _record_differences(ra, rb, EPOCH_FIELDS, f"{prefix}epoch {ra.get('epoch')}")
    if len(ea) != len(eb):
        diffs.append(f"{prefix}epochs recorded: fts={len(ea)} ours={len(eb)}")
    diffs += _record_differences(a.get("end") or {}, b.get("end") or {}, END_FIELDS, f"{prefix}end")
    return diffs


def compare(fts: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Compare two traces of one scenario: {"match": True/False/None, "first": str, "differences": [...]}."""
    if fts.get("status") != "ok" or ours.get("status") != "ok":
        return {"match": None, "first": _status_line(fts, ours), "differences": []}
    diffs: list[str] = []
    if "first_fit" in fts or "first_fit" in ours:
        diffs += _fit_differences(fts.get("first_fit") or {}, ours.get("first_fit") or {}, "first fit · ")
        resumed = first_difference(fts.get("resumed_from"), ours.get("resumed_from"), "resumed from")
        diffs += [resumed] if resumed else []
    diffs += _fit_differences(fts, ours, "")
    return {"match": not diffs, "first": diffs[0] if diffs else "", "differences": diffs}


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _status_line(fts: dict[str, Any], ours: dict[str, Any], skip_not_run: bool = False) -> str:
    parts = []
    for side, trace in (("fts", fts), ("ours", ours)):
        status = trace.get("status")
        if skip_not_run and status in ("not_run", "ok"):
            continue
        if status == "import_error":
            parts.append(f"{side}: cannot import the public API ({_last_line(trace.get('error', ''))})")
        elif status == "error":
            first_line = (trace.get("error") or "").splitlines()[0] if trace.get("error") else ""
            parts.append(f"{side}: scenario raised {first_line}")
        elif status != "ok":
            parts.append(f"{side}: {status} {trace.get('error', '')}".strip())
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# fts_behavior.md §8 expectations, checked on each side with public facts (and FTS internals where recorded)
# ---------------------------------------------------------------------------------------------------------------

# (ES.stopped_epoch, depth_remaining, curr_depth, _ft_epoch, #thawed, #metadata pgs, #optimizer pgs, pg lrs)
END_TUPLES: dict[str, tuple[str, tuple[Any, ...]]] = {
    "implicit": ("B (F,-1)", (7, 0, 3, 8, 8, 4, 4, (0.001, 1e-05, 1e-05, 1e-05))),
    "implicit_no_restore_best": (
        "B (F,-1) shape, restore_best=False",
        (7, 0, 3, 8, 8, 4, 4, (0.001, 1e-05, 1e-05, 1e-05)),
    ),
    "explicit_file": ("B (T,-1)", (5, 0, 2, 6, 8, 3, 3, (0.001, 1e-06, 1e-05))),
    "explicit_file_lr_string": ("B (T,-1), lr written 1e-06", (5, 0, 2, 6, 8, 3, 3, (0.001, 1e-06, 1e-05))),
    "explicit_dict": ("B (T,-1), dict schedule", (5, 0, 2, 6, 8, 3, 3, (0.001, 1e-06, 1e-05))),
    "implicit_max_depth_0": ("B (F,0)", (4, 0, 0, 5, 2, 1, 1, (0.001,))),
    "explicit_max_depth_0": ("B (T,0)", (4, 0, 0, 5, 4, 1, 1, (0.001,))),
    "implicit_max_depth_2": ("B (F,2)", (6, 0, 2, 7, 6, 3, 3, (0.001, 1e-05, 1e-05))),
    "explicit_max_depth_2": ("B (T,2)", (5, 0, 2, 6, 8, 3, 3, (0.001, 1e-06, 1e-05))),
    "no_decay_explicit": ("B decay (T,nodecay)", (5, 0, 2, 6, 8, 5, 5, None)),
    "no_decay_implicit": ("B decay (F,nodecay)", (7, 0, 3, 8, 8, 7, 7, None)),
}

_INTRAFIT = {e: (0, 3, e, 0, 0, 0 if e == 0 else 1, 2, 1, 0, 0) for e in range(5)} | {
    5: (1, 2, 5, 0, 0, 1, 4, 2, 0, 0),
    6: (2, 1, 6, 0, 0, 1, 6, 3, 0, 0),
    7: (3, 0, 7, 0, 0, 1, 8, 4, 0, 0),
}
_ENFORCE_P0 = {e: (0, 2, e, 0, 0, 0 if e == 0 else 1, 2, 2, 0, 0) for e in range(5)} | {
    5: (1, 1, 5, 0, 0, 1, 4, 4, 0, 0),
    6: (2, 0, 6, 0, 0, 1, 6, 6, 0, 0),
}
# (curr_depth, depth_remaining, _ft_epoch, meta.current_ckpt_depth, meta.best_ckpt_depth, len(meta.best_ckpt_pgs),
#  #thawed, #internal-metadata pgs, ckpt_cb.current_ckpt_depth, ckpt_cb.best_ckpt_depth), keyed by epoch
EPOCH_TUPLES: dict[str, tuple[str, dict[int, tuple[int, ...]]]] = {
    "implicit": ("C intrafit, restore_best=True", _INTRAFIT),
    "implicit_no_restore_best": ("C intrafit, restore_best=False", _INTRAFIT),
    "enforce_phase0_wrong_params": ("D enforce_p0 step_lr", _ENFORCE_P0),
    "epoch_transitions_only": ("C dynamo_intrafit epoch 4 (here without compile)", {4: (2, 0, 4, 1, 1, 1, 8, 3, 1, 1)}),
}
# rounded (9 digits) optimizer lrs at the start of the given epochs
EPOCH_LRS: dict[str, tuple[str, dict[int, tuple[float, ...]]]] = {
    "no_lr_scheduler": (
        "C nolrs",
        {3: (0.1,), 4: (0.1, 1e-05), 5: (0.1, 1e-05, 1e-05), 6: (0.1, 1e-05, 1e-05, 1e-05)},
    ),
    "enforce_phase0_wrong_params": (
        "D enforce_p0 step_lr lrs",
        {e: (round(0.001 * 0.7**e, 9),) * 2 for e in range(5)}
        | {5: (0.00016807, 0.00016807, 1e-05, 1e-05), 6: (0.000117649, 0.000117649, 7e-06, 7e-06, 1e-05, 1e-05)},
    ),
}
# (ckpt_cb.best_ckpt_depth, depth_remaining, curr_depth) at the end of the resumed fit
RESUME_TUPLES: dict[str, tuple[str, tuple[int, int, int]]] = {
    "resume_from_best": ("E resume (diff dirpath, best, -1)", (0, 0, 3)),
    "resume_from_kth": ("E resume (diff dirpath, kth, -1)", (1, 0, 3)),
    "resume_from_kth_stateful_ckpt_path": ("E resume (diff dirpath, kth, -1)", (1, 0, 3)),
}
# epoch_transitions_only: (depth_remaining, curr_depth, _ft_epoch, #thawed, #metadata pgs, #optimizer pgs)
EPOCH_ONLY_END = ("I epoch_trans_only", (0, 2, 6, 8, 3, 3))


def _private(record: dict[str, Any], key: str, public: Any) -> Any:
    """An FTS internal when recorded (reference side), else the public fact the §8 tests equate it with."""
    value = (record.get("fts_private") or {}).get(key)
    return public if value is None else value


def _end_tuple(t: dict[str, Any]) -> tuple[Any, ...]:
    end = t["end"]
    pgs = end["param_groups"]
    return (
        (end.get("early_stopping") or {}).get("stopped_epoch"),
        end["depth_remaining"],
        end["curr_depth"],
        _private(end, "ft_epoch", end["epochs_completed"]),
        len(end["trainable"]),
        _private(end, "internal_optimizer_metadata_pgs", len(pgs)),
        len(pgs),
        tuple(_private(end, "internal_optimizer_metadata_lrs", [pg["initial_lr"] for pg in pgs])),
    )


def _epoch_tuple(rec: dict[str, Any]) -> tuple[Any, ...]:
    ckpt = rec.get("checkpoint") or {}
    return (
        rec["curr_depth"],
        rec["depth_remaining"],
        _private(rec, "ft_epoch", rec["epoch"]),
        _private(rec, "meta_current_ckpt_depth", ckpt.get("current_ckpt_depth")),
        _private(rec, "meta_best_ckpt_depth", ckpt.get("best_ckpt_depth")),
        (rec.get("fts_private") or {}).get("meta_best_ckpt_pgs", "?"),
        len(rec["trainable"]),
        _private(rec, "internal_optimizer_metadata_pgs", len(rec["param_groups"])),
        ckpt.get("current_ckpt_depth"),
        ckpt.get("best_ckpt_depth"),
    )


def _tuples_equal(expected: tuple[Any, ...], actual: tuple[Any, ...]) -> bool:
    # "?" marks an FTS internal that the other implementation does not expose: not comparable, not a failure.
    return len(expected) == len(actual) and all(
        a == "?" or e is None or e == a for e, a in zip(expected, actual, strict=True)
    )


_Check = Callable[[str, Any, Callable[[], Any], Callable[[Any, Any], bool]], None]


def _eq(expected: Any, actual: Any) -> bool:
    return bool(expected == actual)


def _tuple_eq(expected: Any, actual: Any) -> bool:
    return isinstance(actual, tuple) and _tuples_equal(expected, actual)


def _end_checks(name: str, trace: dict[str, Any], add: _Check) -> None:
    if name in END_TUPLES:
        label, expected = END_TUPLES[name]
        add(f"{label}: end tuple", expected, lambda: _end_tuple(trace), _tuple_eq)
        if name.startswith("no_decay"):
            pgs = trace["end"]["param_groups"]
            add(f"{label}: param_groups[2].weight_decay", 0.0, lambda: pgs[2]["weight_decay"], _eq)
    end = trace["end"]
    if name in RESUME_TUPLES:
        label, expected_r = RESUME_TUPLES[name]
        add(
            f"{label}: (best_ckpt_depth, depth_remaining, curr_depth)",
            expected_r,
            lambda: (end["checkpoint"]["best_ckpt_depth"], end["depth_remaining"], end["curr_depth"]),
            _eq,
        )
    if name.startswith("epoch_transitions_only"):
        label, expected_e = EPOCH_ONLY_END
        add(
            f"{label}: (dr, depth, _ft_epoch, #thawed, #meta pgs, #pgs)",
            expected_e,
            lambda: (
                end["depth_remaining"],
                end["curr_depth"],
                _private(end, "ft_epoch", end["epochs_completed"]),
                len(end["trainable"]),
                _private(end, "internal_optimizer_metadata_pgs", len(end["param_groups"])),
                len(end["param_groups"]),
            ),
            _eq,
        )
        no_es = not any("EarlyStopping" in c for c in end["callbacks"])
        add(f"{label}: no EarlyStopping left", True, lambda: no_es, _eq)


def _epoch_checks(name: str, trace: dict[str, Any], add: _Check) -> None:
    epochs = {rec["epoch"]: rec for rec in trace.get("epochs", [])}
    if name in EPOCH_TUPLES:
        label, by_epoch = EPOCH_TUPLES[name]
        for epoch, expected in by_epoch.items():
            add(f"{label}: epoch {epoch}", expected, lambda e=epoch: _epoch_tuple(epochs[e]), _tuple_eq)
    if name in EPOCH_LRS:
        label, lrs_by_epoch = EPOCH_LRS[name]
        for epoch, lrs in lrs_by_epoch.items():
            add(
                f"{label}: epoch {epoch}",
                lrs,
                lambda e=epoch: tuple(round(pg["lr"], 9) for pg in epochs[e]["param_groups"]),
                _eq,
            )


def section8_checks(name: str, trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Evaluate the §8 expectations that apply to ``name`` on one side's trace."""
    if trace.get("status") != "ok":
        return []
    checks: list[dict[str, Any]] = []

    def add(label: str, expected: Any, actual: Callable[[], Any], equal: Callable[[Any, Any], bool]) -> None:
        try:
            value = actual()
        except (KeyError, IndexError, TypeError) as err:
            value = f"<not recorded: {err!r}>"
        checks.append({"check": label, "expected": expected, "actual": value, "ok": equal(expected, value)})

    _end_checks(name, trace, add)
    _epoch_checks(name, trace, add)
    return checks


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _env_line(side: str, traces: dict[str, dict[str, Any]]) -> str:
    for trace in traces.values():
        env = trace.get("environment")
        if env:
            fs = env.get("finetuning_scheduler", {})
            where = fs.get("file") or fs.get("error")
            return (
                f"- **{side}**: `{env.get('python')}`; torch {env.get('torch', {}).get('version')}, "
                f"lightning {env.get('lightning', {}).get('version')}, finetuning_scheduler {fs.get('version')} "
                f"from `{where}`"
            )
    return f"- **{side}**: not run"


def differing_fields(differences: Sequence[str]) -> list[str]:
    """The recorded fields behind a list of differences (``epoch 5.param_groups[1].lr: …`` → ``param_groups``)."""
    fields: list[str] = []
    for diff in differences:
        location = diff.split(": ", 1)[0].split(" · ")[-1]
        head = location.split(".", 1)[1] if "." in location else location
        field = head.split(".", 1)[0].split("[", 1)[0]
        if field not in fields:
            fields.append(field)
    return fields


def _match_cell(result: dict[str, Any], only: str) -> str:
    if only != "both":
        return "n/a (one side only)"
    return {True: "yes", False: "**no**", None: "n/a"}[result["match"]]


def render_report(
    names: list[str],
    traces: dict[str, dict[str, dict[str, Any]]],
    results: dict[str, dict[str, Any]],
    checks: dict[str, dict[str, list[dict[str, Any]]]],
    runs: dict[str, dict[str, Any]],
    only: str,
) -> str:
    lines = [
        "# Parity report: reference FTS 2.14.1 vs this project",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `python -m benchmarks.parity"
        f"{'' if only == 'both' else ' --only ' + only}` from real runs (see README.md for what is recorded).",
        "",
        *[_env_line(side, traces[side]) for side in SIDES],
        *[
            f"- {side} side: {r['seconds']} s, exit status {r['returncode']}, log `{r['log']}`"
            for side, r in runs.items()
        ],
        "",
        "## Scenarios",
        "",
        "| scenario | match | first difference | fields that differ |",
        "|---|---|---|---|",
    ]
    for name in names:
        result = results[name]
        first = (
            result["first"] if only == "both" else _status_line(*(traces[s][name] for s in SIDES), skip_not_run=True)
        )
        extra = f" (+{len(result['differences']) - 1} more)" if len(result["differences"]) > 1 else ""
        fields = ", ".join(differing_fields(result["differences"]))
        lines.append(f"| {name} | {_match_cell(result, only)} | {_md(first)}{extra} | {fields} |")
    lines += [
        "",
        "## Expected values of fts_behavior.md §8",
        "",
        "Each side's trace is checked against the values that FTS's own tests assert. FTS internals (`_ft_epoch`,",
        "the internal optimizer metadata, the checkpoint metadata) are read where recorded (reference side); on the",
        "project side their public equivalents are used (epochs completed, optimizer param groups and their",
        "`initial_lr`, FTSCheckpoint depths); `?` marks an internal with no public equivalent (not compared).",
        "",
        "| scenario | check | expected | fts | ours |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        by_label: dict[str, dict[str, dict[str, Any]]] = {}
        for side in SIDES:
            for c in checks[side].get(name, []):
                by_label.setdefault(c["check"], {})[side] = c
        for label, per_side in by_label.items():
            expected = next(iter(per_side.values()))["expected"]
            cells = []
            for side in SIDES:
                c = per_side.get(side)
                cells.append("—" if c is None else f"{'ok' if c['ok'] else '**FAIL**'} `{_md(c['actual'])}`")
            lines.append(f"| {name} | {_md(label)} | `{_md(expected)}` | {cells[0]} | {cells[1]} |")
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def scenario_names(python: str) -> list[str]:
    out = subprocess.run([python, str(SCENARIO_SCRIPT), "--list"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parity", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["both", *SIDES], default="both", help="run one side only")
    parser.add_argument("--scenarios", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--isolate", action="store_true", help="one subprocess per scenario (slower, more isolated)")
    parser.add_argument("--ours-python", type=Path, default=REPO / ".venv" / "bin" / "python")
    parser.add_argument("--fts-python", type=Path, default=None, help="use this interpreter instead of the venv")
    parser.add_argument("--reinstall", action="store_true", help="recreate the reference venv")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per side subprocess")
    parser.add_argument("--fail-on-diff", action="store_true", help="exit 1 when a scenario does not match")
    parser.add_argument(
        "--update-report",
        action="store_true",
        help="write REPORT.md and report.json beside this file (tracked); by default they go to _work/ (ignored)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in args.scenarios.split(",") if n] or scenario_names(sys.executable)
    pythons: dict[str, Path] = {}
    if args.only in ("both", "fts"):
        pythons["fts"] = args.fts_python or ensure_fts_venv(args.ours_python, args.reinstall)
    if args.only in ("both", "ours"):
        pythons["ours"] = args.ours_python
    print(f"[parity] {len(names)} scenarios on {', '.join(pythons)}", flush=True)
    with ThreadPoolExecutor(max_workers=len(pythons)) as pool:
        futures = {s: pool.submit(run_side, s, py, names, args.isolate, args.timeout) for s, py in pythons.items()}
        runs = {s: f.result() for s, f in futures.items()}
    # A side that did not run this time has no trace, even if an earlier run left one on disk.
    traces = {
        side: {n: load_trace(side, n, runs[side]) if side in runs else {"status": "not_run"} for n in names}
        for side in SIDES
    }
    results = {n: compare(traces["fts"][n], traces["ours"][n]) for n in names}
    checks = {side: {n: section8_checks(n, traces[side][n]) for n in names} for side in SIDES}
    report = render_report(names, traces, results, checks, runs, args.only)
    reports = HERE if args.update_report else WORK
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "REPORT.md").write_text(report)
    summary = {
        "only": args.only,
        "runs": runs,
        "scenarios": {
            n: {
                **results[n],
                "status": {s: traces[s][n].get("status") for s in SIDES},
                "section8": {s: checks[s][n] for s in SIDES},
            }
            for n in names
        },
    }
    (reports / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    print(report)
    mismatched = [n for n in names if results[n]["match"] is not True]
    return 1 if args.fail_on_diff and args.only == "both" and mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
