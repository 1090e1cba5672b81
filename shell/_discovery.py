"""Strategy-adapter plugins: discover entry points as data, resolve with the core, load only the chosen class.

Discovery reads installed metadata and imports nothing, so an unrelated broken plugin costs at most a warning. The
adapter selected for the current strategy flag is imported alone; if that fails, the error says which flag, which
reference, what failed and how to fix it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from returns.pipeline import is_successful

from finetuning_scheduler.core import (
    BUILTIN_ADAPTERS,
    ENTRY_POINT_GROUP,
    AdapterParams,
    AdapterSelection,
    AdapterSpec,
    Diagnostic,
    Diagnostics,
    Origin,
    check_adapter_cfg,
    check_strategy_flag,
    errors_only,
    parse_adapter_ref,
    registry,
    registry_problems,
    resolve_adapter,
    warning,
    warnings_only,
)

from ._strategy_adapter import StrategyAdapter


class AdapterError(MisconfigurationException):
    """The strategy adapter could not be chosen, imported or built (the message says why and how to fix it)."""


class AdapterWarning(UserWarning):
    """A problem with an installed adapter plugin that does not stop training."""


def _render(diagnostics: Diagnostics) -> str:
    return "\n".join(d.message + (f"\n    hint: {d.hint}" if d.hint else "") for d in diagnostics)


def _warn(diagnostics: Diagnostics) -> None:
    for diagnostic in diagnostics:
        rank_zero_warn(_render((diagnostic,)), category=AdapterWarning)


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
    _warn(problems + registry_problems(BUILTIN_ADAPTERS, specs))
    return specs


# -- loading --------------------------------------------------------------------------------------------------------


def _describe(selection: AdapterSelection) -> str:
    spec = selection.spec
    source = f"{spec.provider} -> {spec.value}" if spec.origin is not Origin.PATH else "a class path"
    written = selection.reference if selection.reference is not None else spec.name
    flag = f"for strategy flag {selection.flag!r} " if selection.flag else ""
    return f"{flag}from {written!r} ({source})"


_IMPORT_FAILED = "Could not import the specified custom strategy adapter class"


def _fail(selection: AdapterSelection, what: str, fix: str, lead: str = _IMPORT_FAILED) -> AdapterError:
    return AdapterError(f"{lead} {_describe(selection)}: {what}.\n    To fix: {fix}")


def _is_adapter_class(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, StrategyAdapter) and value is not StrategyAdapter


def _adapter_classes(module: types.ModuleType) -> list[str]:
    found = []
    for name in dir(module):
        try:
            value = getattr(module, name)
        except Exception:  # a lazy attribute that fails to load is simply not offered as a suggestion
            continue
        if _is_adapter_class(value):
            found.append(name)
    return sorted(found)


def _import_module(selection: AdapterSelection, module_name: str) -> types.ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            fix = "install the package that provides it in this environment, or correct the module path"
            raise _fail(selection, f"module {module_name!r} was not found ({exc})", fix) from exc
        what = f"module {module_name!r} failed to import: {type(exc).__name__}: {exc}"
        raise _fail(selection, what, "install the plugin's missing dependency, or upgrade the plugin") from exc
    except Exception as exc:
        what = f"module {module_name!r} raised while importing: {type(exc).__name__}: {exc}"
        raise _fail(selection, what, "this is a bug in the plugin: upgrade it or report it to its authors") from exc


def _attribute(selection: AdapterSelection, module: types.ModuleType, attr: str) -> Any:
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            known = _adapter_classes(module)
            what = f"module {module.__name__!r} has no attribute {attr!r}"
            fix = f"use one of its adapter classes {known}" if known else "check the class name and its module"
            raise _fail(selection, what, fix)
        found = getattr(found, part)
    return found


def load_adapter(selection: AdapterSelection | AdapterSpec) -> type[StrategyAdapter]:
    """Import the selected adapter class, and only it.

    Raises:
        AdapterError: the module is missing or fails to import, the class is missing, or it is not a
            :class:`StrategyAdapter` subclass; the message names the flag, the reference and the fix.
    """
    if isinstance(selection, AdapterSpec):
        selection = AdapterSelection("", selection)
    parsed = parse_adapter_ref(selection.spec.value)
    if not is_successful(parsed) or parsed.unwrap().module == "":
        fix = "the entry point's value must be 'package.module:ClassName'; fix the plugin's metadata"
        raise _fail(selection, f"{selection.spec.value!r} is not a class reference", fix)
    ref = parsed.unwrap()
    found = _attribute(selection, _import_module(selection, ref.module), ref.attr)
    if not (isinstance(found, type) and issubclass(found, StrategyAdapter)):
        what = f"{ref.value} is {found!r}, not a StrategyAdapter subclass"
        fix = "adapters must inherit from finetuning_scheduler.strategy_adapters.StrategyAdapter"
        raise _fail(selection, what, fix, lead="Could not use the specified custom strategy adapter")
    return found


def adapter_params(cls: type[StrategyAdapter]) -> AdapterParams:
    """The constructor parameters of an adapter class, as data."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = list(inspect.signature(cls).parameters.values())
    names = tuple(p.name for p in params if p.kind in kinds)
    required = tuple(p.name for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return AdapterParams(f"{cls.__module__}.{cls.__qualname__}", names, required, var_keyword)


def instantiate_adapter(
    cls: type[StrategyAdapter], cfg: Mapping[str, Any], selection: AdapterSelection | None = None
) -> StrategyAdapter:
    """Build the adapter from ``strategy_adapter_cfg``; unknown keys and constructor errors are one clear error."""
    where = f" for strategy flag {selection.flag!r}" if selection is not None and selection.flag else ""
    problems = check_adapter_cfg(adapter_params(cls), cfg)
    if problems:
        raise AdapterError(f"Invalid strategy_adapter_cfg{where}:\n{_render(problems)}")
    try:
        return cls(**cfg)
    except Exception as exc:
        raise AdapterError(
            f"The strategy adapter {cls.__module__}.{cls.__qualname__}{where} could not be built from "
            f"strategy_adapter_cfg {dict(cfg)}: {type(exc).__name__}: {exc}\n"
            "    To fix: correct the configuration the adapter rejects (see the adapter's documentation)."
        ) from exc


# -- the whole step -------------------------------------------------------------------------------------------------


def select_adapter(flag: str, custom_map: Mapping[str, str] | None) -> AdapterSelection:
    """Resolve the adapter for a strategy flag; plugins are discovered only when ``custom_map`` is given.

    Raises:
        AdapterError: the flag is not mapped, the name is unknown or ambiguous, or the reference is malformed.
    """
    discovered = discover_adapters() if custom_map else ()
    outcome = resolve_adapter(flag, custom_map, BUILTIN_ADAPTERS, discovered)
    if not is_successful(outcome):
        raise AdapterError(_render(outcome.failure()))
    selection = outcome.unwrap()
    # Siblings are never imported (their code never runs), but one that plainly cannot load still costs a warning.
    siblings = (spec for spec in discovered if spec != selection.spec and ":" in spec.value)
    _warn(tuple(_unloadable(spec, problem) for spec in siblings if (problem := sibling_problem(spec))))
    return selection


def sibling_problem(spec: AdapterSpec) -> str | None:
    """Why a plugin cannot load, found without running its code; ``None`` when nothing shows.

    Finds the module (only parent packages are imported) and reads its source: a missing module, a syntax error or
    a class that the module does not define at its top level is reported. A module that fails only when run is
    not detected until it is selected.
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


def make_adapter(
    flag: str,
    custom_map: Mapping[str, str] | None = None,
    cfg: Mapping[str, Any] | None = None,
    allow_untested: bool = False,
) -> StrategyAdapter:
    """Check the strategy flag, then select, load and build its adapter (the callback's setup step).

    Raises:
        AdapterError: an untested strategy without ``allow_untested``, or any selection/load/build failure.
    """
    checked = check_strategy_flag(flag, allow_untested)
    if errors_only(checked):
        raise AdapterError(_render(checked))
    _warn(warnings_only(checked))
    selection = select_adapter(flag, custom_map)
    return instantiate_adapter(load_adapter(selection), cfg or {}, selection)


def strategy_flag_of(flag_or_strategy: object) -> str:
    """The lowercased strategy flag: a string flag as given, a strategy object by its ``strategy_name`` (or its class
    name, lowercased, as FTS infers it).

    >>> strategy_flag_of("DDP"), strategy_flag_of(types.SimpleNamespace(strategy_name="fsdp"))
    ('ddp', 'fsdp')
    """
    if isinstance(flag_or_strategy, str):
        return flag_or_strategy.lower()
    return str(getattr(flag_or_strategy, "strategy_name", type(flag_or_strategy).__name__)).lower()


# -- the registry view ----------------------------------------------------------------------------------------------


class AdapterRegistry(Mapping[str, type[StrategyAdapter]]):
    """A read-only view of the built-in and discovered adapters, keyed by lowercased name.

    Keys, ``in`` and :attr:`specs` never import anything; looking up a value imports that adapter class (and raises
    :class:`AdapterError` if it is broken). Discovery happens on first use and again on :meth:`refresh`.
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP, builtins: Mapping[str, str] = BUILTIN_ADAPTERS) -> None:
        self._group = group
        self._builtins = builtins
        self._specs: Mapping[str, AdapterSpec] | None = None
        self._classes: dict[str, type[StrategyAdapter]] = {}

    def refresh(self) -> None:
        """Discover the installed entry points again (after installing or removing a plugin)."""
        self._specs = registry(self._builtins, discover_adapters(self._group))
        self._classes = {}

    @property
    def specs(self) -> Mapping[str, AdapterSpec]:
        """The adapters as data, by name (no import)."""
        if self._specs is None:
            self.refresh()
        assert self._specs is not None
        return self._specs

    def __getitem__(self, name: str) -> type[StrategyAdapter]:
        key = name.lower()
        if key not in self._classes:
            spec = self.specs[key]
            self._classes[key] = load_adapter(AdapterSelection("", spec, name))
        return self._classes[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __repr__(self) -> str:
        return f"AdapterRegistry({ {name: spec.value for name, spec in self.specs.items()} })"


STRATEGY_ADAPTERS = AdapterRegistry()
"""Built-in plus discovered strategy adapters by lowercased name (a read-only view; classes load on access)."""
