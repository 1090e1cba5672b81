"""Renaming checkpoint (state-dict) keys between the two spaces of a :class:`NameMap`: only where a schedule-space
name is a pure rename of the same tensor (``exact`` and ``prefix`` bindings).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping

from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostics, error
from ._names import (
    Direction,
    NameMap,
    unwrapped_name_map,  # noqa: F401 (used by the doctests)
)


def rename_keys(keys: Iterable[str], name_map: NameMap, direction: Direction) -> Result[Mapping[str, str], Diagnostics]:
    """Rename checkpoint (state-dict) keys between the spaces: a mapping old key -> new key, in order.

    Only ``exact`` and ``prefix`` bindings rename a key (the same tensor in the same layout); every other key, buffers
    included, is kept. Two keys landing on one name are an error. No tensor is touched: apply the mapping to a state
    dict in the shell.

    >>> nm = unwrapped_name_map(["_orig_mod.w", "_orig_mod.b"]).unwrap()
    >>> dict(rename_keys(["_orig_mod.w", "_orig_mod.b", "step"], nm, Direction.TO_VIEW).unwrap())
    {'_orig_mod.w': 'w', '_orig_mod.b': 'b', 'step': 'step'}
    >>> dict(rename_keys(["w"], nm, Direction.TO_CANONICAL).unwrap())
    {'w': '_orig_mod.w'}
    >>> [d.code for d in rename_keys(["_orig_mod.w", "w"], nm, Direction.TO_VIEW).failure()]
    ['state-dict-key-collision']
    """
    table = name_map.renames[direction]
    renamed = {key: table.get(key, key) for key in keys}  # one dict pass: ~10 ms for 100k keys
    if len(set(renamed.values())) == len(renamed):
        return Success(types.MappingProxyType(renamed))
    targets: dict[str, list[str]] = {}
    for old, new in renamed.items():
        targets.setdefault(new, []).append(old)
    return Failure(
        tuple(
            error("state-dict-key-collision", f"checkpoint keys {olds} would all be renamed to {new!r}")
            for new, olds in targets.items()
            if len(olds) > 1
        )
    )
