"""Constructor arguments checked where they are given: one error that names every bad argument, what it got and
what it accepts, instead of a ``TypeError`` from deep inside a fit.

The checks are data (:class:`Accepts`: a description and a predicate), so the callbacks, the driver and the command
line share them and the documentation can list them.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs


class ArgumentError(TypeError, ValueError):
    """Bad constructor arguments: the message lists each one (``ValueError`` and ``TypeError`` both catch it)."""

    def __init__(self, owner: str, problems: list[str]) -> None:
        self.owner, self.problems = owner, tuple(problems)
        listed = "\n  - ".join(problems)
        plural = "s" if len(problems) > 1 else ""
        super().__init__(f"{owner}: {len(problems)} invalid argument{plural}:\n  - {listed}")


@attrs.frozen
class Accepts:
    """What an argument accepts: ``description`` (said in the error) and ``test`` (the value is acceptable)."""

    description: str
    test: Callable[[Any], bool]


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(minimum: int | None = None) -> Accepts:
    """An int (never a bool), at least ``minimum``."""
    said = "an int" if minimum is None else f"an int >= {minimum}"
    return Accepts(said, lambda v: _is_int(v) and (minimum is None or v >= minimum))


def positive_number() -> Accepts:
    """A finite real number > 0 (never a bool or a string)."""
    return Accepts("a finite number > 0", lambda v: _is_real(v) and math.isfinite(v) and v > 0)


def number(minimum: float | None = None) -> Accepts:
    """A finite real number, at least ``minimum``."""
    said = "a finite number" if minimum is None else f"a finite number >= {minimum:g}"
    return Accepts(said, lambda v: _is_real(v) and math.isfinite(v) and (minimum is None or v >= minimum))


BOOL = Accepts("True or False", lambda v: isinstance(v, bool))
OPTIONAL_BOOL = Accepts("True, False or None", lambda v: v is None or isinstance(v, bool))
PATH = Accepts("a path (str or os.PathLike)", lambda v: isinstance(v, str | os.PathLike) and os.fspath(v) != "")
OPTIONAL_PATH = Accepts("None or a path (str or os.PathLike)", lambda v: v is None or PATH.test(v))
OPTIONAL_STR = Accepts("None or a str", lambda v: v is None or isinstance(v, str))
STR = Accepts("a non-empty str", lambda v: isinstance(v, str) and v != "")
CLASS_PREFIXES = Accepts(
    "None or a list of module prefixes (non-empty str), such as ['torch.optim']",
    lambda v: v is None or (isinstance(v, list | tuple) and all(isinstance(x, str) and x.strip(".") for x in v)),
)


def optional_mapping(keys: str = "str") -> Accepts:
    """``None`` or a mapping whose keys are strings (keyword arguments, configuration blocks)."""
    return Accepts(
        f"None or a dict with {keys} keys",
        lambda v: v is None or (isinstance(v, Mapping) and all(isinstance(k, str) for k in v)),
    )


def one_of(*choices: object) -> Accepts:
    return Accepts(" or ".join(repr(c) for c in choices), lambda v: any(v == c and type(v) is type(c) for c in choices))


def _shown(value: object) -> str:
    text = repr(value)
    return (text if len(text) <= 60 else text[:57] + "...") + f" ({type(value).__name__})"


def argument_problems(values: Mapping[str, Any], accepted: Mapping[str, Accepts]) -> list[str]:
    """One line per value its :class:`Accepts` rejects (a predicate that raises rejects too).

    >>> argument_problems({"max_depth": "2"}, {"max_depth": integer(-1)})
    ["max_depth must be an int >= -1, got '2' (str)"]
    """
    problems = []
    for name, accepts in accepted.items():
        if name not in values:
            continue
        value = values[name]
        try:
            ok = bool(accepts.test(value))
        except Exception:
            ok = False
        if not ok:
            problems.append(f"{name} must be {accepts.description}, got {_shown(value)}")
    return problems


def check_arguments(owner: str, values: Mapping[str, Any], accepted: Mapping[str, Accepts]) -> None:
    """Raise one :class:`ArgumentError` naming every rejected value of ``values``.

    >>> check_arguments("Thing", {"patience": 2}, {"patience": integer(0)})
    >>> check_arguments("Thing", {"patience": True}, {"patience": integer(0)})
    Traceback (most recent call last):
    ...
    finetuning_scheduler.shell.engine._arguments.ArgumentError: Thing: 1 invalid argument:
      - patience must be an int >= 0, got True (bool)
    """
    problems = argument_problems(values, accepted)
    if problems:
        raise ArgumentError(owner, problems)


__all__ = [
    "BOOL",
    "OPTIONAL_BOOL",
    "OPTIONAL_PATH",
    "OPTIONAL_STR",
    "PATH",
    "STR",
    "Accepts",
    "ArgumentError",
    "argument_problems",
    "check_arguments",
    "integer",
    "number",
    "one_of",
    "optional_mapping",
    "positive_number",
]
