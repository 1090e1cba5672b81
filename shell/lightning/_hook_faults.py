"""A plugin adapter's hook that raises is reported as the plugin's fault: which adapter, from which distribution,
in which hook, with the original exception chained (its traceback stays under "The above exception was the
direct cause"). Built-in adapters are not wrapped: their errors are already the library's own, clear ones.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from finetuning_scheduler.core import AdapterSelection, Origin

from ..plugins import AdapterError
from ._strategy_adapter import StrategyAdapter

HOOKS: tuple[str, ...] = tuple(
    name
    for name, member in vars(StrategyAdapter).items()
    if not name.startswith("_") and inspect.isfunction(member) and name != "connect"
)
"""Every override point of :class:`StrategyAdapter` (``connect`` is the library's, not a hook)."""


class AdapterHookError(AdapterError):
    """A strategy adapter's hook raised; ``adapter``, ``provider`` and ``hook`` say whose code and where."""

    def __init__(self, adapter: str, provider: str, hook: str, error: BaseException) -> None:
        self.adapter, self.provider, self.hook = adapter, provider, hook
        super().__init__(
            f"The strategy adapter {adapter} ({provider}) raised in its hook {hook}: {type(error).__name__}: {error}\n"
            "    This is the adapter's code, not the scheduler's: see its documentation or report it to its "
            "authors; to train without it, remove it from custom_strategy_adapters."
        )


def _guarded(method: Callable[..., Any], adapter: str, provider: str, hook: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AdapterHookError:
            raise  # an inner hook's report (a hook calling another): already says where
        except Exception as exc:
            raise AdapterHookError(adapter, provider, hook, exc) from exc

    return call


def guard_hooks(adapter: StrategyAdapter, selection: AdapterSelection) -> StrategyAdapter:
    """Report failures of the hooks a plugin adapter defines itself (on this instance; the class is untouched).

    >>> import types
    >>> from finetuning_scheduler.core import AdapterSpec
    >>> class Broken(StrategyAdapter):
    ...     def fts_optim_transform(self, orig_pl, inspect_only=False):
    ...         raise KeyError(orig_pl[0])
    >>> spec = AdapterSpec("broken", "pkg.mod:Broken", "pkg", "1.0")
    >>> guarded = guard_hooks(Broken(), AdapterSelection("ddp", spec))
    >>> try:
    ...     guarded.fts_optim_transform(["head.weight"])
    ... except AdapterHookError as error:
    ...     print(error.hook, "|", error.provider)
    fts_optim_transform | entry point 'broken' of distribution pkg 1.0
    """
    if selection.spec.origin in (Origin.BUILTIN, Origin.BASE):
        return adapter
    cls = type(adapter)
    name = f"{cls.__module__}.{cls.__qualname__}"
    for hook in HOOKS:
        if getattr(cls, hook, None) is not getattr(StrategyAdapter, hook):  # the plugin's own code
            try:
                object.__setattr__(adapter, hook, _guarded(getattr(adapter, hook), name, selection.spec.provider, hook))
            except (AttributeError, TypeError):  # a slotted adapter: its errors surface unwrapped
                return adapter
    return adapter


__all__ = ["HOOKS", "AdapterHookError", "guard_hooks"]
