"""The cattrs converter: strict primitives, so a schedule means exactly what it says.

Decision on ``lr: 1e-5``: PyYAML (YAML 1.1) reads ``1e-5`` as the *string* ``"1e-5"`` because it lacks a dot.
FTS accepts it, and it is the most common way to write a learning rate, so float fields accept strings that
spell a decimal number (``"1e-5"``, ``"3.0E-4"``). Anything else (``"fast"``, ``true``) is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import cattrs
from cattrs.preconf.pyyaml import PyyamlConverter
from cattrs.preconf.pyyaml import make_converter as _make_pyyaml_converter

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _type_name(value: object) -> str:
    return "boolean" if isinstance(value, bool) else type(value).__name__


def _strict_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_type_name(value)} {value!r}")
    return value


def _strict_float(value: object, _: type) -> float:
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {_type_name(value)} {value!r}")
    return float(value)


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {_type_name(value)} {value!r}")
    return value


def _strict_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_type_name(value)} {value!r}")
    return value


def _is_str_tuple(type_: Any) -> bool:
    return bool(type_ == tuple[str, ...])


def _is_float_tuple(type_: Any) -> bool:
    return bool(type_ == tuple[float, ...])


def _is_str_mapping(type_: Any) -> bool:
    return bool(type_ == Mapping[str, Any])


def _sequence_hook(item: Callable[[object, type], Any], what: str) -> Callable[[object, type], tuple[Any, ...]]:
    def structure(value: object, _: type) -> tuple[Any, ...]:
        # A bare string is a sequence of characters in Python; in a schedule it is always a mistake.
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list of {what}, got {_type_name(value)} {value!r}")
        return tuple(item(v, type(v)) for v in value)

    return structure


def _mapping_hook(value: object, _: type) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {_type_name(value)} {value!r}")
    return dict(value)


def make_converter() -> PyyamlConverter:
    """A fresh converter for schedules and fit state (no global converter: each embedder gets its own).

    >>> conv = make_converter()
    >>> conv.structure("1e-5", float)
    1e-05
    >>> conv.structure(True, int)
    Traceback (most recent call last):
    ...
    TypeError: expected an integer, got boolean True
    """
    conv = _make_pyyaml_converter(forbid_extra_keys=True, omit_if_default=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook_func(_is_str_tuple, _sequence_hook(_strict_str, "strings"))
    conv.register_structure_hook_func(_is_float_tuple, _sequence_hook(_strict_float, "numbers"))
    conv.register_structure_hook_func(_is_str_mapping, _mapping_hook)
    conv.register_unstructure_hook_func(_is_str_mapping, dict)
    return conv


def describe(exc: BaseException, type_: Any) -> str:
    """Turn a structuring exception into a short message (for ``cattrs.transform_error``).

    >>> describe(TypeError("expected a string, got int 3"), str)
    'expected a string, got int 3'
    >>> describe(cattrs.ForbiddenExtraKeysError("", dict, {None, "x"}), dict)  # YAML keys need not be strings
    'unknown key(s): None, x'
    """
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):  # YAML keys may be None, numbers, booleans...
        return f"unknown key(s): {', '.join(sorted(map(str, exc.extra_fields)))}"
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, AttributeError) and "keys" in str(exc):
        return "expected a mapping"
    if isinstance(exc, TypeError | ValueError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return cattrs.v.format_exception(exc, type_)
