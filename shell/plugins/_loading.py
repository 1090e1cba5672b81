"""Loading the one selected adapter class, and building it from ``strategy_adapter_cfg``.

Generic over the adapter base class (the Lightning integration passes its ``StrategyAdapter``), so plugin
loading sits below the callbacks that use it. A failure names the flag, the reference, what failed and the fix.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Mapping
from typing import Any, TypeVar

from returns.pipeline import is_successful

from finetuning_scheduler.core import (
    AdapterParams,
    AdapterSelection,
    AdapterSpec,
    Origin,
    check_adapter_cfg,
    parse_adapter_ref,
)

from ._report import AdapterError, render

_Adapter = TypeVar("_Adapter")

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


def _is_adapter_class(value: object, base: type) -> bool:
    return isinstance(value, type) and issubclass(value, base) and value is not base


def _adapter_classes(module: types.ModuleType, base: type) -> list[str]:
    found = []
    for name in dir(module):
        try:
            value = getattr(module, name)
        except Exception:  # a lazy attribute that fails to load is simply not offered as a suggestion
            continue
        if _is_adapter_class(value, base):
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


def _attribute(selection: AdapterSelection, module: types.ModuleType, attr: str, base: type) -> Any:
    found: Any = module
    for part in attr.split("."):
        if not hasattr(found, part):
            known = _adapter_classes(module, base)
            what = f"module {module.__name__!r} has no attribute {attr!r}"
            fix = f"use one of its adapter classes {known}" if known else "check the class name and its module"
            raise _fail(selection, what, fix)
        found = getattr(found, part)
    return found


def load_adapter_class(selection: AdapterSelection | AdapterSpec, base: type[_Adapter]) -> type[_Adapter]:
    """Import the selected adapter class, and only it; it must be a subclass of ``base``.

    Raises:
        AdapterError: the module is missing or fails to import, the class is missing, or it is not a ``base``
            subclass; the message names the flag, the reference and the fix.
    """
    if isinstance(selection, AdapterSpec):
        selection = AdapterSelection("", selection)
    parsed = parse_adapter_ref(selection.spec.value)
    if not is_successful(parsed) or parsed.unwrap().module == "":
        fix = "the entry point's value must be 'package.module:ClassName'; fix the plugin's metadata"
        raise _fail(selection, f"{selection.spec.value!r} is not a class reference", fix)
    ref = parsed.unwrap()
    found = _attribute(selection, _import_module(selection, ref.module), ref.attr, base)
    if not (isinstance(found, type) and issubclass(found, base)):
        what = f"{ref.value} is {found!r}, not a {base.__name__} subclass"
        fix = f"adapters must inherit from finetuning_scheduler.strategy_adapters.{base.__name__}"
        raise _fail(selection, what, fix, lead="Could not use the specified custom strategy adapter")
    return found


def adapter_params(cls: type) -> AdapterParams:
    """The constructor parameters of an adapter class, as data.

    >>> class Adapter:
    ...     def __init__(self, fused: str = "error", *, portable: bool) -> None: ...
    >>> params = adapter_params(Adapter)
    >>> params.names, params.required
    (('fused', 'portable'), ('portable',))
    """
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = list(inspect.signature(cls).parameters.values())
    names = tuple(p.name for p in params if p.kind in kinds)
    required = tuple(p.name for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return AdapterParams(f"{cls.__module__}.{cls.__qualname__}", names, required, var_keyword)


def instantiate_adapter(
    cls: type[_Adapter], cfg: Mapping[str, Any], selection: AdapterSelection | None = None
) -> _Adapter:
    """Build the adapter from ``strategy_adapter_cfg``; unknown keys and constructor errors are one clear error."""
    where = f" for strategy flag {selection.flag!r}" if selection is not None and selection.flag else ""
    problems = check_adapter_cfg(adapter_params(cls), cfg)
    if problems:
        raise AdapterError(f"Invalid strategy_adapter_cfg{where}:\n{render(problems)}")
    try:
        return cls(**cfg)
    except Exception as exc:
        raise AdapterError(
            f"The strategy adapter {cls.__module__}.{cls.__qualname__}{where} could not be built from "
            f"strategy_adapter_cfg {dict(cfg)}: {type(exc).__name__}: {exc}\n"
            "    To fix: correct the configuration the adapter rejects (see the adapter's documentation)."
        ) from exc


__all__ = ["adapter_params", "instantiate_adapter", "load_adapter_class"]
