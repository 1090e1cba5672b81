"""Which classes a schedule names for reinitialisation, and whether each lies in the modules the user trusts.

Pure: nothing here imports a class (the shell does that, only for classes this allows). Importing a class runs its
module's code, so a schedule from elsewhere is code; ``allowed_prefixes`` restricts it to trusted modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ._diagnostics import Diagnostics, Location, error
from ._records import ClassInit, LRSchedulerInit, OptimizerInit, Phase, SourceMap
from ._structure import locate
from ._transition import ImplicitReinit


def class_path_allowed(class_path: str, allowed_prefixes: Sequence[str] | None) -> bool:
    """Whether ``class_path`` lies in one of the allowed modules (``None`` allows every module, as FTS does).

    >>> class_path_allowed("torch.optim.AdamW", ["torch.optim"]), class_path_allowed("torch.optimx.A", ["torch.optim"])
    (True, False)
    """
    if allowed_prefixes is None:
        return True
    return any(class_path.startswith(prefix.rstrip(".") + ".") for prefix in allowed_prefixes)


def phase_reinit_blocks(
    phases: Sequence[Phase], implicit: ImplicitReinit
) -> Iterator[tuple[Location, OptimizerInit | LRSchedulerInit]]:
    """The reinitialisation blocks of phases > 0 that will be used: an implicit configuration replaces its kind.

    >>> from ._records import ClassInit
    >>> block = OptimizerInit(ClassInit("torch.optim.SGD"))
    >>> [str(where) for where, _ in phase_reinit_blocks((Phase(("a",)), Phase(("b",), new_optimizer=block)),
    ...                                                  ImplicitReinit())]
    ['phase 1 › new_optimizer']
    """
    for depth in range(1, len(phases)):
        phase = phases[depth]
        if phase.new_optimizer is not None and implicit.optimizer is None:
            yield Location(depth, "new_optimizer"), phase.new_optimizer
        if phase.new_lr_scheduler is not None and implicit.lr_scheduler is None:
            yield Location(depth, "new_lr_scheduler"), phase.new_lr_scheduler


def _classes(phases: Sequence[Phase], implicit: ImplicitReinit) -> Iterator[tuple[Location, ClassInit]]:
    """Every class the blocks in use name, located at its ``class_path``."""
    blocks: list[tuple[Location, OptimizerInit | LRSchedulerInit]] = []
    if implicit.optimizer is not None:
        blocks.append((Location(None, "reinit_optim_cfg"), implicit.optimizer))
    if implicit.lr_scheduler is not None:
        blocks.append((Location(None, "reinit_lr_cfg"), implicit.lr_scheduler))
    for where, spec in [*blocks, *phase_reinit_blocks(phases, implicit)]:
        if isinstance(spec, OptimizerInit):
            key, init = "optimizer_init", spec.optimizer_init
        else:
            key, init = "lr_scheduler_init", spec.lr_scheduler_init
        yield Location(where.phase, where.key, subpath=(key, "class_path")), init


def disallowed_class_paths(
    phases: Sequence[Phase], source: SourceMap, implicit: ImplicitReinit, allowed_prefixes: Sequence[str] | None
) -> Diagnostics:
    """A located ``reinit-class-not-allowed`` error for each class outside ``allowed_prefixes``.

    >>> from ._records import ClassInit
    >>> block = OptimizerInit(ClassInit("evil.Optimizer"))
    >>> [d.render() for d in disallowed_class_paths((Phase(("a",)), Phase(("b",), new_optimizer=block)), SourceMap(),
    ...                                             ImplicitReinit(), ["torch.optim"])]  # doctest: +ELLIPSIS
    ["error[reinit-class-not-allowed] phase 1 › new_optimizer.optimizer_init.class_path: 'evil.Optimizer' is ..."]
    """
    if allowed_prefixes is None:
        return ()
    found = tuple(
        error(
            "reinit-class-not-allowed",
            f"{init.class_path!r} is outside the allowed modules ({', '.join(allowed_prefixes)}); it was not imported",
            where,
            "use a class from an allowed module, or add its module to allowed_class_prefixes if you trust it",
        )
        for where, init in _classes(phases, implicit)
        if not class_path_allowed(init.class_path, allowed_prefixes)
    )
    return locate(found, source)


__all__ = ["class_path_allowed", "disallowed_class_paths", "phase_reinit_blocks"]
