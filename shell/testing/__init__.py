"""Hypothesis strategies for property-testing fine-tuning schedules: the library's own, and yours.

Import them from the facade, :mod:`finetuning_scheduler.testing`. They need Hypothesis (``pip install hypothesis``),
which the library itself does not depend on.

A property over your own model's parameter names::

    from hypothesis import given
    from finetuning_scheduler.core import ParamInventory, validate
    from finetuning_scheduler.testing import schedules_for

    MY_MODEL = ParamInventory.from_names(["encoder.0.weight", "encoder.1.weight", "head.weight", "head.bias"])

    @given(schedules_for(MY_MODEL))
    def test_every_partition_of_my_model_validates(schedule):
        assert validate(schedule, MY_MODEL).unwrap().unscheduled == ()
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "finetuning_scheduler.testing needs Hypothesis: pip install hypothesis (or the package's [test] extra)"
    ) from exc

from finetuning_scheduler.core import (
    ClassInit,
    LRSchedulerInit,
    OptimizerInit,
    ParamInventory,
    Phase,
    Schedule,
)

# Components seen in real parameter names (PyTorch, Hugging Face, TransformerLens), plus small block numbers:
# numbers that are prefixes of each other ("1", "10", "11") exercise the `re.match` over-matching FTS users meet.
_WORDS = (
    "model",
    "transformer",
    "encoder",
    "decoder",
    "layers",
    "layer",
    "blocks",
    "h",
    "attn",
    "self_attn",
    "mlp",
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "fc1",
    "fc2",
    "norm",
    "ln_1",
    "embed_tokens",
    "lm_head",
    "classifier",
    "pooler",
    "conv",
    "bn",
    "rnn",
)
_LEAVES = ("weight", "bias", "W_Q", "b_Q", "parent_param", "weight_ih_l0", "bias_hh_l0", "scale")
_DTYPES = ("float32", "bfloat16", "float16", "float64")


def _component() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_WORDS), st.integers(0, 12).map(str))


def dotted_names() -> st.SearchStrategy[str]:
    """One parameter name: zero to four module components and a leaf, joined by dots.

    >>> from hypothesis import find
    >>> find(dotted_names(), lambda name: name.count(".") == 2).count(".")
    2
    """
    path = st.lists(_component(), min_size=0, max_size=4)
    return st.tuples(path, st.sampled_from(_LEAVES)).map(lambda parts: ".".join([*parts[0], parts[1]]))


def param_names(min_size: int = 1, max_size: int = 30) -> st.SearchStrategy[list[str]]:
    """Lists of unique, realistic dotted parameter names (``layers.10.attn.q_proj.weight``, ``bias``...).

    Args:
        min_size: the fewest names in a list (at least 1 gives a model with parameters).
        max_size: the most names in a list.

    >>> from hypothesis import find
    >>> names = find(param_names(min_size=3), lambda names: True)
    >>> len(names) == len(set(names)) >= 3
    True
    """
    return st.lists(dotted_names(), min_size=min_size, max_size=max_size, unique=True)


_SHAPES: tuple[tuple[int, ...], ...] = ((8,), (8, 8), (32, 8), (4, 3, 3, 3), (1,), (2, 8, 8))


def _shapes(count: int) -> st.SearchStrategy[list[tuple[int, ...]]]:
    return st.lists(st.sampled_from(_SHAPES), min_size=count, max_size=count)


@st.composite
def inventories(
    draw: st.DrawFn, names: st.SearchStrategy[list[str]] | None = None, max_aliases: int = 3
) -> ParamInventory:
    """A :class:`ParamInventory` with consistent columns, and sometimes shared-parameter aliases (tied weights).

    Args:
        names: the strategy for the registered names (default :func:`param_names`).
        max_aliases: the most alias names (other names of registered parameters, as tied weights have).

    >>> from hypothesis import find
    >>> inventory = find(inventories(), lambda inv: len(inv.aliases) > 0)
    >>> set(inventory.aliases.values()) <= set(inventory.names), set(inventory.aliases).isdisjoint(inventory.names)
    (True, True)
    """
    registered = draw(names if names is not None else param_names())
    extra = st.lists(dotted_names().filter(lambda n: n not in registered), max_size=max_aliases, unique=True)
    alias_names = draw(extra)
    targets = draw(st.lists(st.sampled_from(registered), min_size=len(alias_names), max_size=len(alias_names)))
    shapes = draw(_shapes(len(registered)))
    return ParamInventory(
        tuple(registered),
        numels=tuple(math.prod(shape) for shape in shapes),
        shapes=tuple(shapes),
        dtypes=tuple(draw(st.lists(st.sampled_from(_DTYPES), min_size=len(shapes), max_size=len(shapes)))),
        modules=tuple(name.rpartition(".")[0] for name in registered),
        aliases=dict(zip(alias_names, targets, strict=True)),
    )


def _cuts(draw: st.DrawFn, count: int, max_phases: int | None) -> list[int]:
    """Phase boundaries: 0, some distinct cut points, ``count``."""
    phases = draw(st.integers(1, min(count, max_phases or count)))
    if phases == 1:
        return [0, count]
    inner = draw(st.lists(st.integers(1, count - 1), min_size=phases - 1, max_size=phases - 1, unique=True))
    return [0, *sorted(inner), count]


def _epochs(draw: st.DrawFn, phases: int) -> list[int]:
    """Strictly increasing ``max_transition_epoch`` values, each phase keeping its own or ``-1`` (none)."""
    steps = draw(st.lists(st.integers(1, 3), min_size=phases, max_size=phases))
    keep = draw(st.lists(st.booleans(), min_size=phases, max_size=phases))
    running = [sum(steps[: i + 1]) - 1 for i in range(phases)]
    return [epoch if kept else -1 for epoch, kept in zip(running, keep, strict=True)]


def _lrs(draw: st.DrawFn, phases: int) -> list[float | None]:
    """No lr in phase 0 (it would only be ignored), an optional positive lr in the others."""
    lr = st.none() | st.floats(1e-8, 1.0)
    return [None, *(draw(lr) for _ in range(phases - 1))]


@st.composite
def schedules_for(draw: st.DrawFn, inventory: ParamInventory, max_phases: int | None = None) -> Schedule:
    """Valid-by-construction schedules for ``inventory``: a permutation of its names cut into phases.

    Every name is thawed by exactly one phase, each phase is non-empty, ``max_transition_epoch`` values (where
    given) increase, and later phases may carry a positive ``lr``. Such a schedule always validates.

    Args:
        inventory: the model's parameters; it must have at least one name.
        max_phases: the most phases (default: one per name at most).

    >>> from hypothesis import find
    >>> inventory = ParamInventory.from_names(["a.weight", "a.bias", "b.weight"])
    >>> schedule = find(schedules_for(inventory), lambda s: len(s.phases) == 3)
    >>> sorted(name for phase in schedule.phases for name in phase.params)
    ['a.bias', 'a.weight', 'b.weight']
    """
    order = draw(st.permutations(inventory.names))
    bounds = _cuts(draw, len(order), max_phases)
    count = len(bounds) - 1
    epochs, lrs = _epochs(draw, count), _lrs(draw, count)
    return Schedule(
        tuple(
            Phase(tuple(order[bounds[i] : bounds[i + 1]]), max_transition_epoch=epochs[i], lr=lrs[i])
            for i in range(count)
        )
    )


def inventory_and_schedule(
    inventory_strategy: st.SearchStrategy[ParamInventory] | None = None,
) -> st.SearchStrategy[tuple[ParamInventory, Schedule]]:
    """Pairs of an inventory and a valid-by-construction schedule for it (see :func:`schedules_for`).

    Args:
        inventory_strategy: where the inventories come from (default :func:`inventories`).

    >>> from hypothesis import find
    >>> from finetuning_scheduler.core import validate
    >>> inventory, schedule = find(inventory_and_schedule(), lambda pair: len(pair[1].phases) > 1)
    >>> validate(schedule, inventory).unwrap().unscheduled
    ()
    """
    source = inventory_strategy if inventory_strategy is not None else inventories()
    return source.flatmap(lambda inventory: schedules_for(inventory).map(lambda schedule: (inventory, schedule)))


def _entries_for(names: Sequence[str]) -> st.SearchStrategy[str]:
    """Schedule entries that may or may not fit: exact names, regexes cut from them, and strangers."""
    known = st.sampled_from(names)
    prefix = known.flatmap(lambda name: st.integers(0, len(name)).map(lambda end: name[:end] + ".*"))
    stranger = st.sampled_from(
        ("missing.weight", "head.*", "layers.1[0-9].*", "(broken", "blocks?\\.2\\..*", "weight$", "attn|mlp")
    )
    return st.one_of(known, known, prefix, stranger)


@st.composite
def schedules_over(draw: st.DrawFn, inventory: ParamInventory, max_phases: int = 5) -> Schedule:
    """Schedules whose entries are drawn from ``inventory`` without care: exact names, regexes, overlaps, misses.

    Use it for properties that must hold whether validation succeeds or not (order independence, every thawed
    parameter belonging to one phase, every error pointing at a real entry).

    >>> from hypothesis import find
    >>> inventory = ParamInventory.from_names(["a.weight", "a.bias"])
    >>> len(find(schedules_over(inventory), lambda s: len(s.phases) == 2).phases)
    2
    """
    entries = st.lists(_entries_for(inventory.names), min_size=0, max_size=4).map(tuple)
    params = draw(st.lists(entries, min_size=1, max_size=max_phases))
    epochs = draw(st.lists(st.integers(-2, 6), min_size=len(params), max_size=len(params)))
    return Schedule(tuple(Phase(p, max_transition_epoch=e) for p, e in zip(params, epochs, strict=True)))


def yaml_values() -> st.SearchStrategy[Any]:
    """Plain values YAML writes and reads back unchanged: scalars, lists and string-keyed mappings.

    NaN is left out: it is never equal to itself, so no round trip could compare equal.
    """
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
        max_leaves=6,
    )


def class_inits() -> st.SearchStrategy[ClassInit]:
    """``{class_path, init_args}`` blocks with arbitrary plain-data arguments."""
    return st.builds(
        ClassInit,
        class_path=st.text(min_size=1, max_size=30),
        init_args=st.dictionaries(st.text(max_size=10), yaml_values(), max_size=3),
    )


def _lr_scheduler_inits() -> st.SearchStrategy[LRSchedulerInit]:
    return st.builds(
        LRSchedulerInit,
        lr_scheduler_init=class_inits(),
        pl_lrs_cfg=st.dictionaries(st.text(max_size=10), yaml_values(), max_size=3),
        init_pg_lrs=st.none() | st.lists(st.floats(allow_nan=False), max_size=5).map(tuple),
        use_current_optimizer_pg_lrs=st.none() | st.booleans(),
    )


def phases() -> st.SearchStrategy[Phase]:
    """Any structurally valid :class:`Phase`: arbitrary strings as entries, any epoch, any (non-NaN) lr."""
    return st.builds(
        Phase,
        params=st.lists(st.text(max_size=20), max_size=4).map(tuple),
        max_transition_epoch=st.integers(),
        lr=st.none() | st.floats(allow_nan=False),
        new_optimizer=st.none() | st.builds(OptimizerInit, class_inits()),
        new_lr_scheduler=st.none() | _lr_scheduler_inits(),
    )


def schedules(max_phases: int = 4) -> st.SearchStrategy[Schedule]:
    """Any structurally valid :class:`Schedule` (it need not fit a model): for codec and round-trip tests.

    >>> from hypothesis import find
    >>> from finetuning_scheduler.core import dump_schedule, parse_yaml, structure_schedule
    >>> schedule = find(schedules(), lambda s: s.phases[0].new_optimizer is not None)
    >>> parse_yaml(dump_schedule(schedule)).bind(structure_schedule).unwrap() == schedule
    True
    """
    return st.lists(phases(), min_size=1, max_size=max_phases).map(lambda found: Schedule(tuple(found)))
