"""How plugin problems are reported: one error type for the adapter in use, one warning type for the others."""

from __future__ import annotations

from lightning.pytorch.utilities.exceptions import MisconfigurationException  # type: ignore[attr-defined]
from lightning.pytorch.utilities.rank_zero import rank_zero_warn  # type: ignore[attr-defined]

from finetuning_scheduler.core import Diagnostics


class AdapterError(MisconfigurationException):
    """The strategy adapter could not be chosen, imported or built (the message says why and how to fix it)."""


class AdapterWarning(UserWarning):
    """A problem with an installed adapter plugin that does not stop training."""


def render(diagnostics: Diagnostics) -> str:
    """The diagnostics' messages with their hints, one per line (plugin messages carry no schedule position).

    >>> from finetuning_scheduler.core import warning
    >>> print(render((warning("adapter-plugin-broken", "plugin 'x' cannot be loaded", hint="reinstall it"),)))
    plugin 'x' cannot be loaded
        hint: reinstall it
    """
    return "\n".join(d.message + (f"\n    hint: {d.hint}" if d.hint else "") for d in diagnostics)


def warn(diagnostics: Diagnostics) -> None:
    """Each diagnostic as an :class:`AdapterWarning`, on rank zero only."""
    for diagnostic in diagnostics:
        rank_zero_warn(render((diagnostic,)), category=AdapterWarning)


__all__ = ["AdapterError", "AdapterWarning", "render", "warn"]
