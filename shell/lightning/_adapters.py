"""Strategy adapters for the Lightning callback: plugin loading bound to :class:`StrategyAdapter`, the strategy-flag
step of ``setup``, and the read-only registry of built-in plus installed adapters (``STRATEGY_ADAPTERS``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from typing_extensions import override

from finetuning_scheduler.core import (
    BUILTIN_ADAPTERS,
    ENTRY_POINT_GROUP,
    AdapterSelection,
    AdapterSpec,
    check_strategy_flag,
    errors_only,
    registry,
    warnings_only,
)

from ..plugins import (
    AdapterError,
    discover_adapters,
    instantiate_adapter,
    load_adapter_class,
    render,
    select_adapter,
    warn,
)
from ._hook_faults import guard_hooks
from ._strategy_adapter import StrategyAdapter


def load_adapter(selection: AdapterSelection | AdapterSpec) -> type[StrategyAdapter]:
    """Import the selected adapter class, and only it.

    Raises:
        AdapterError: the module is missing or fails to import, the class is missing, or it is not a
            :class:`StrategyAdapter` subclass; the message names the flag, the reference and the fix.

    >>> load_adapter(AdapterSpec("fsdp", BUILTIN_ADAPTERS["fsdp"])).__name__
    'FSDPStrategyAdapter'
    """
    return load_adapter_class(selection, StrategyAdapter)


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
        raise AdapterError(render(checked))
    warn(warnings_only(checked))
    selection = select_adapter(flag, custom_map)
    return guard_hooks(instantiate_adapter(load_adapter(selection), cfg or {}, selection), selection)


def strategy_flag_of(flag_or_strategy: object) -> str:
    """The lowercased strategy flag: a string flag as given, a strategy object by its ``strategy_name`` (or its class
    name, lowercased, as FTS infers it).

    >>> import types
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

    @override
    def __getitem__(self, name: str) -> type[StrategyAdapter]:
        key = name.lower()
        if key not in self._classes:
            spec = self.specs[key]
            self._classes[key] = load_adapter(AdapterSelection("", spec, name))
        return self._classes[key]

    @override
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.specs

    @override
    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    @override
    def __len__(self) -> int:
        return len(self.specs)

    @override
    def __repr__(self) -> str:
        return f"AdapterRegistry({ {name: spec.value for name, spec in self.specs.items()} })"


STRATEGY_ADAPTERS = AdapterRegistry()
"""Built-in plus discovered strategy adapters by lowercased name (a read-only view; classes load on access)."""


__all__ = ["STRATEGY_ADAPTERS", "AdapterRegistry", "load_adapter", "make_adapter", "strategy_flag_of"]
