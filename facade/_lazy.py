"""Lazy re-exports (PEP 562) for the facade modules: a name's module is imported when the name is first used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a facade module whose ``exports`` map names to defining modules.

    >>> space = {"__name__": "facade"}
    >>> getattr_, dir_ = lazy_exports(space, {"Path": "pathlib"})
    >>> getattr_("Path").__name__, "Path" in space, dir_()
    ('Path', True, ['Path', '__name__'])
    """

    def module_getattr(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def module_dir() -> list[str]:
        return sorted({*namespace, *exports})

    return module_getattr, module_dir
