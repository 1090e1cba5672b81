"""Default schedules generated from a model's parameters."""

from __future__ import annotations

import enum
import re

from ._records import ParamInventory, PlainPhases, Schedule


class GenerationPolicy(enum.Enum):
    """How to cut a model into phases when no schedule is given.

    ``FTS`` reproduces FTS's implicit schedule exactly: parameters in reverse registration order, two per phase.
    ``MODULE`` gives one phase per block (the first numbered component, e.g. ``transformer.h.3``) or per module,
    head first, which is what real models want.
    """

    FTS = "fts"
    MODULE = "module"


def _pairs(names: tuple[str, ...]) -> PlainPhases:
    reverse = names[::-1]
    return PlainPhases([reverse[i : i + 2] for i in range(0, len(reverse), 2)])


_NUMBERED = re.compile(r"^(.*?\.\d+)(?:\.|$)")


def block_of(name: str) -> str:
    """The group a parameter belongs to under the module policy: its first numbered block, else its module.

    >>> block_of("transformer.h.3.attn.c_attn.weight"), block_of("lm_head.weight"), block_of("bias")
    ('transformer.h.3', 'lm_head', '')
    """
    numbered = _NUMBERED.match(name)
    return numbered.group(1) if numbered else name.rpartition(".")[0]


def _by_module(names: tuple[str, ...]) -> PlainPhases:
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(block_of(name), []).append(name)
    return PlainPhases([tuple(members) for members in reversed(groups.values())])


def generate(inventory: ParamInventory, policy: GenerationPolicy = GenerationPolicy.FTS) -> Schedule:
    """A default schedule for a model: every parameter thawed exactly once, the last-registered first.

    >>> names = ("model.0.weight", "model.0.bias", "model.1.weight", "model.1.bias", "model.2.weight")
    >>> [p.params for p in generate(ParamInventory.from_names(names)).phases]
    [('model.2.weight', 'model.1.bias'), ('model.1.weight', 'model.0.bias'), ('model.0.weight',)]
    >>> [p.params for p in generate(ParamInventory.from_names(names), GenerationPolicy.MODULE).phases]
    [('model.2.weight',), ('model.1.weight', 'model.1.bias'), ('model.0.weight', 'model.0.bias')]
    """
    if policy is GenerationPolicy.MODULE:
        return Schedule(_by_module(inventory.names))
    return Schedule(_pairs(inventory.names))
