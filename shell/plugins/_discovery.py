"""Strategy-adapter plugins as data: discover the installed entry points without importing them, resolve the one
for a strategy flag with the core, and find (by reading, never running) the siblings that plainly cannot load.

An unrelated broken plugin costs at most a warning; only the selected adapter is ever imported (``_loading``).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

from finetuning_scheduler.core import (
    BUILTIN_ADAPTERS,
    ENTRY_POINT_GROUP,
    AdapterSelection,
    AdapterSpec,
    Diagnostic,
    Diagnostics,
    registry_problems,
    resolve_adapter,
    warning,
)

from ..engine import value_or_raise
from ._report import AdapterError, render, warn

# -- discovery ------------------------------------------------------------------------------------------------------


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _identity(dist: importlib.metadata.Distribution) -> tuple[str, str]:
    try:
        return str(dist.metadata["Name"] or "?"), str(dist.version or "?")
    except Exception:  # unreadable METADATA: still worth a warning that says where
        return f"at {getattr(dist, '_path', '?')}", "?"


def scan_entry_points(group: str = ENTRY_POINT_GROUP) -> tuple[tuple[AdapterSpec, ...], Diagnostics]:
    """Every entry point of ``group`` as data (nothing imported), sorted and de-duplicated, and a warning for each
    distribution whose entry points could not be read.

    Distributions are read one by one, so one broken distribution cannot hide the others (as it would with
    ``importlib.metadata.entry_points()``). A distribution installed twice counts once, the first on ``sys.path``.
    """
    specs: set[AdapterSpec] = set()
    problems: list[Diagnostic] = []
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        name, version = _identity(dist)
        if _normalized(name) in seen:
            continue
        seen.add(_normalized(name))
        try:
            specs.update(
                AdapterSpec(ep.name.lower(), ep.value, name, version) for ep in dist.entry_points.select(group=group)
            )
        except Exception as exc:  # a broken installed distribution must not stop anyone's training
            message = (
                f"the entry points of distribution {name} {version} could not be read: {type(exc).__name__}: {exc}"
            )
            problems.append(
                warning("adapter-metadata-unreadable", message, hint="reinstall or remove that distribution")
            )
    ordered = sorted(specs, key=lambda s: (s.name, s.distribution or "", s.version or "", s.value))
    return tuple(ordered), tuple(problems)


def discover_adapters(group: str = ENTRY_POINT_GROUP) -> tuple[AdapterSpec, ...]:
    """The installed strategy-adapter entry points, as data: sorted, de-duplicated, nothing imported.

    Problems that do not concern the adapter in use (unreadable metadata, a plugin shadowing a built-in name, two
    plugins with one name, a malformed value) are warnings (:class:`AdapterWarning`), never errors.
    """
    specs, problems = scan_entry_points(group)
    warn(problems + registry_problems(BUILTIN_ADAPTERS, specs))
    return specs


# -- the whole step -------------------------------------------------------------------------------------------------


def select_adapter(flag: str, custom_map: Mapping[str, str] | None) -> AdapterSelection:
    """Resolve the adapter for a strategy flag; plugins are discovered only when ``custom_map`` is given.

    Raises:
        AdapterError: the flag is not mapped, the name is unknown or ambiguous, or the reference is malformed.
    """
    discovered = discover_adapters() if custom_map else ()
    outcome = resolve_adapter(flag, custom_map, BUILTIN_ADAPTERS, discovered)
    selection = value_or_raise(outcome, lambda problems: AdapterError(render(problems)))
    # Siblings are never imported (their code never runs), but one that plainly cannot load still costs a warning.
    siblings = (spec for spec in discovered if spec != selection.spec and ":" in spec.value)
    warn(tuple(_unloadable(spec, problem) for spec in siblings if (problem := sibling_problem(spec))))
    return selection


def sibling_problem(spec: AdapterSpec) -> str | None:
    """Why a plugin cannot load, found without running its code; ``None`` when nothing shows.

    Finds the module (only parent packages are imported) and reads its source: a missing module, a syntax error or
    a class that the module does not define at its top level is reported. A module that fails only when run is
    not detected until it is selected.

    >>> sibling_problem(AdapterSpec("gone", "no_such_plugin_module:Adapter"))
    "module 'no_such_plugin_module' was not found"
    """
    module, _, attribute = (part.strip() for part in spec.value.partition(":"))
    try:
        found = importlib.util.find_spec(module) if module else None
    except Exception as exc:  # a parent package that fails to import: the plugin is broken all the same
        return f"its package cannot be imported ({type(exc).__name__}: {exc})"
    if found is None:
        return f"module {module!r} was not found"
    origin = found.origin or ""
    return _source_problem(origin, attribute.split(".")[0]) if origin.endswith(".py") else None


def _source_problem(path: str, attribute: str) -> str | None:
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except SyntaxError as exc:
        return f"{path} has a syntax error (line {exc.lineno}: {exc.msg})"
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # unreadable here; it may still load
    names = _top_level_names(tree)
    if names is None or not attribute or attribute in names:
        return None
    return f"{Path(path).name} defines no {attribute!r} at its top level"


def _sub_bodies(node: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists that run as part of a module-level ``if``/``try``/``with``/loop (not function bodies)."""
    bodies = [getattr(node, field, []) for field in ("body", "orelse", "finalbody")]
    bodies += [handler.body for handler in getattr(node, "handlers", [])]
    return bodies


def _bound_names(body: list[ast.stmt]) -> set[str] | None:
    """Names a module binds at its top level (inside module-level ``if``/``try`` too); ``None`` when it may bind
    others dynamically (a star import)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for sub in _sub_bodies(node):
                nested = _bound_names(sub)
                if nested is None:
                    return None
                names |= nested
    return names


def _top_level_names(tree: ast.Module) -> set[str] | None:
    names = _bound_names(tree.body)
    return None if names is None or "__getattr__" in names else names  # a module __getattr__ can make anything


def _unloadable(spec: AdapterSpec, problem: str) -> Diagnostic:
    message = (
        f"strategy adapter plugin {spec.name!r} ({spec.provider} -> {spec.value}) cannot be loaded: {problem}. "
        "It is not the adapter in use, so training goes on"
    )
    return warning("adapter-plugin-broken", message, hint=f"reinstall or uninstall {spec.distribution or 'it'}")


__all__ = ["discover_adapters", "scan_entry_points", "select_adapter", "sibling_problem"]
