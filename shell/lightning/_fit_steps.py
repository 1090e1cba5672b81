"""What the callback does to Lightning's strategy and optimizer: route the strategy's model loading through the
adapter, check for one optimizer with a supported LR scheduler, enforce phase 0 on the optimizer
``configure_optimizers`` built, and reload the best checkpoint before a phase.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.strategies import Strategy
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import MisconfigurationException  # type: ignore[attr-defined]
from lightning.pytorch.utilities.rank_zero import rank_zero_warn  # type: ignore[attr-defined]
from lightning.pytorch.utilities.types import LRSchedulerConfig
from torch import nn

from finetuning_scheduler.core import ImplicitReinit, LRSchedulerInit, structure_implicit_reinit

from ..engine import (
    SUPPORTED_LR_SCHEDULERS,
    PhaseEngine,
    forget,
    materialize_optimizer_state,
    one_walk,
    trainable_counts,
    truncate_param_groups,
    unsupported_scheduler,
    value_or_raise,
)
from ._checkpoint_files import route_checkpoint_reading
from ._errors import ScheduleValidationError
from ._strategy_adapter import StrategyAdapter

_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(LRSchedulerConfig)) - {"scheduler"}


def route_model_loading(strategy: Strategy, adapter: StrategyAdapter) -> None:
    """Make the strategy load model weights through the adapter (Lightning restores the model on resume before any
    callback hook could translate the checkpoint). :func:`unroute_model_loading` undoes it at teardown."""
    unroute_model_loading(strategy)  # a fit that ended by an exception may have left its routing behind
    original = strategy.load_model_state_dict
    adapter.strategy_model_loader = original

    def load_through_adapter(checkpoint: Mapping[str, Any], strict: bool = True) -> None:
        adapter.load_model_state_dict(checkpoint, strict=strict)

    setattr(load_through_adapter, PATCHED_BY_SCHEDULER, True)
    strategy.load_model_state_dict = load_through_adapter  # type: ignore[method-assign]
    route_checkpoint_reading(strategy, PATCHED_BY_SCHEDULER)  # an unreadable file is one clear error


def release_fit(trainer: Trainer, adapter: StrategyAdapter | None) -> None:
    """The fit is over (or failed): the strategy gets its own model loading back, the adapter undoes its changes."""
    unroute_model_loading(trainer.strategy)
    if adapter is not None:
        adapter.on_fit_teardown()


def last_phase_message(depth: int, max_depth: int, early_stopping: bool, max_epochs: int | None) -> str:
    """What ends the fit once its last phase has begun.

    >>> last_phase_message(2, 2, True, 10)
    'Phase 2 is the last one (max_depth 2): training ends by early stopping or max_epochs (max_epochs=10).'
    """
    ending = "early stopping or max_epochs" if early_stopping else "max_epochs"
    return (
        f"Phase {depth} is the last one (max_depth {max_depth}): training ends by {ending} (max_epochs={max_epochs})."
    )


def unroute_model_loading(strategy: Strategy) -> None:
    """Give the strategy its own model and checkpoint loading back (only methods this package patched are removed)."""
    unpatch(strategy, "load_model_state_dict")
    unpatch(strategy, "load_checkpoint")


PATCHED_BY_SCHEDULER = "__patched_by_finetuning_scheduler__"
"""Marks a method this package installed on an object, so that only such a method is ever removed again."""


def unpatch(owner: object, name: str) -> None:
    """Remove the instance attribute ``name`` if this package installed it (see :data:`PATCHED_BY_SCHEDULER`)."""
    if getattr(vars(owner).get(name), PATCHED_BY_SCHEDULER, False):
        del vars(owner)[name]


@contextlib.contextmanager
def optimizer_state_left_out(trainer: Trainer) -> Iterator[None]:
    """Lightning's FSDP (and distributed) checkpoint loading fills the optimizer only while fitting: within this
    block it loads the model alone (for a resume before the phases' groups exist, or a weights-only restore)."""
    state = trainer.state
    was = state.fn
    state.fn = TrainerFn.VALIDATING
    try:
        yield
    finally:
        state.fn = was


def check_optimizers(trainer: Trainer, allow_untested: bool) -> None:
    """One optimizer, and an LR scheduler whose per-group state the engine can extend (or ``allow_untested``)."""
    if len(trainer.optimizers) != 1:
        raise MisconfigurationException(
            f"FinetuningScheduler supports a single-optimizer configuration; configure_optimizers returned "
            f"{len(trainer.optimizers)} optimizers."
        )
    for config in trainer.lr_scheduler_configs[:1]:
        message = unsupported_scheduler(config.scheduler)
        if message is None:
            continue
        if not allow_untested:
            names = [cls.__name__ for cls in SUPPORTED_LR_SCHEDULERS]
            raise MisconfigurationException(
                f"{message}; use one of {names} (or a subclass), or pass allow_untested=True to try it anyway."
            )
        rank_zero_warn(f"{message}; allowing it because allow_untested=True.")


def enforce_phase0(engine: PhaseEngine, enforce: bool, info: Callable[[str], None]) -> bool:
    """Hold the optimizer from ``configure_optimizers`` to phase 0 (FTS's ``enforce_phase0_params``); without
    enforcement, warn what will happen instead. Returns whether the trainable parameters changed."""
    mismatch = engine.phase0_mismatch()
    if mismatch is None:
        return False
    if not enforce:
        rank_zero_warn(mismatch.kept_warning())
        return False
    info(
        f"Phase 0 enforced: {mismatch.summary}. The model was frozen again to phase 0 and the optimizer's groups "
        "were rebuilt from phase 0 (per-group settings from configure_optimizers are replaced by the optimizer's "
        "defaults)."
    )
    engine.rebuild_phase0()
    return True


def restore_best_checkpoint(trainer: Trainer, adapter: StrategyAdapter, path: str, keep_groups: int | None) -> None:
    """Reload the best checkpoint's weights (through the adapter) and its optimizer state onto the first
    ``keep_groups`` param groups (the engine adds the later phases' groups again afterwards); ``None``: the weights
    only (the phase replaces the optimizer, whose saved state may be another class's). Every load here is
    ``weights_only=True``, also where Lightning would default to ``False`` (remote paths): a checkpoint never runs
    code."""
    if adapter.restores_optimizer_in_place and keep_groups is None:
        with optimizer_state_left_out(trainer):  # the optimizer about to be replaced keeps out of it
            trainer.strategy.load_checkpoint(path, weights_only=True)
        return
    if Path(path).is_dir() or adapter.restores_optimizer_in_place:
        _restore_distributed_checkpoint(trainer, adapter, Path(path), keep_groups)
        return
    checkpoint = trainer.strategy.load_checkpoint(path, weights_only=True)
    try:
        checkpoint = adapter.before_restore_model(checkpoint)
    except Exception as exc:  # an adapter's hook must not lose the fit; FTS warns and goes on too
        rank_zero_warn(f"Strategy adapter before_restore_model hook raised: {exc!r}; restoring unchanged.")
    adapter.load_model_state_dict(checkpoint, strict=True)
    if keep_groups is None:
        return
    optimizer = trainer.optimizers[0]
    truncate_param_groups(optimizer, keep_groups)
    adapter.on_before_restore_optimizers_and_lrs()
    optimizer.load_state_dict(checkpoint["optimizer_states"][0])


def _restore_distributed_checkpoint(
    trainer: Trainer, adapter: StrategyAdapter, path: Path, keep_groups: int | None
) -> None:
    """A distributed checkpoint (a folder: ModelParallelStrategy, sharded FSDP), or any checkpoint of a strategy
    whose loading fills the model and optimizer in place (FSDP's full state dicts too), needs the optimizer to have
    the checkpoint's groups already: truncate first, then let the strategy load."""
    strategy = trainer.strategy
    if keep_groups is None:  # the weights only: the optimizer about to be replaced keeps out of it
        from lightning.fabric.strategies.model_parallel import _load_checkpoint

        _load_checkpoint(
            path=path, state={"state_dict": strategy.model}, strict=trainer.lightning_module.strict_loading
        )
        return
    truncate_param_groups(trainer.optimizers[0], keep_groups)
    materialize_optimizer_state(trainer.optimizers[0])
    adapter.on_before_restore_optimizers_and_lrs()
    strategy.load_checkpoint(path, weights_only=True)


def reload_distributed_optimizer_state(trainer: Trainer, in_place: bool = False) -> None:
    """A strategy that restores after its setup (ModelParallelStrategy) loads a distributed checkpoint folder into
    the optimizer in place while it still has phase 0's groups only; once the resumed fit's groups are rebuilt, load
    the folder again so every group gets its saved state and hyperparameters (lrs)."""
    path = trainer.ckpt_path
    if path is not None and (Path(path).is_dir() or in_place):
        materialize_optimizer_state(trainer.optimizers[0])
        trainer.strategy.load_checkpoint(path, weights_only=True)


def saved_group_sizes(optimizer_state: Mapping[str, Any], adapter: StrategyAdapter) -> list[int]:
    """The number of the module's parameters in each group of a saved optimizer state.

    A full FSDP optimizer state names its parameters by their logical names: count the module's parameters they
    stand for (one flat parameter holds several).
    """

    def size(params: list[Any]) -> int:
        if not params or not all(isinstance(param, str) for param in params):
            return len(params)
        return len(set(adapter.fts_optim_transform(list(params))))

    return [size(group["params"]) for group in optimizer_state["param_groups"]]


def install_reinitialised(
    trainer: Trainer, optimizer: torch.optim.Optimizer, schedulers: tuple[Any, ...], spec: LRSchedulerInit | None
) -> None:
    """Hand a phase's new optimizer (and new LR scheduler, configured by ``spec.pl_lrs_cfg``) to the strategy, so
    Lightning steps, logs and checkpoints them from now on."""
    strategy = trainer.strategy
    strategy.optimizers = [optimizer]
    if spec is None:
        return
    (scheduler,) = schedulers
    settings = {key: value for key, value in spec.pl_lrs_cfg.items() if key in _CONFIG_FIELDS}
    settings.setdefault("reduce_on_plateau", isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau))
    strategy.lr_scheduler_configs = [LRSchedulerConfig(scheduler, **settings)]


def implicit_reinit(
    reinit_optim_cfg: Mapping[str, Any] | None, reinit_lr_cfg: Mapping[str, Any] | None, ft_schedule: Any
) -> ImplicitReinit:
    """The callback's implicit reinitialisation arguments as the core's record (every problem in one error)."""
    outcome = structure_implicit_reinit(reinit_optim_cfg, reinit_lr_cfg, explicit_schedule=bool(ft_schedule))
    return value_or_raise(outcome, ScheduleValidationError)


def thaw_logger(adapter: StrategyAdapter, log: logging.Logger) -> Callable[[int, tuple[str, ...]], None]:
    """Log the parameters each thaw makes trainable (in schedule names, through the adapter) at DEBUG."""

    def log_thawed(depth: int, newly: tuple[str, ...]) -> None:
        if log.isEnabledFor(logging.DEBUG):
            shown = adapter.logical_param_translation(list(newly))
            log.debug("Phase %d thawed %d parameter(s): %s", depth, len(newly), ", ".join(shown))

    return log_thawed


def log_fit_metrics(trainer: Trainer, module: torch.nn.Module, depth: int) -> None:
    """The depth, the number of trainable parameter elements and their share of the model, to every logger."""
    if not trainer.loggers:
        return
    _, trainable, total = trainable_counts(module)
    metrics = {
        "finetuning/depth": float(depth),
        "finetuning/trainable_params": float(trainable),
        "finetuning/trainable_share": trainable / total if total else 0.0,
    }
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)


def warn_unused_lambdas(engine: PhaseEngine) -> None:
    """Say that new phases' groups ignore the scheduler's ``lr_lambdas`` unless ``apply_lambdas_new_pgs``."""
    if any(getattr(scheduler, "lr_lambdas", None) for scheduler in engine.schedulers):
        rank_zero_warn(
            "The LR scheduler has lr_lambdas, but new phases' groups start at their configured lr because "
            "apply_lambdas_new_pgs is False; set it to True to scale them by the current lambda."
        )


Hook = TypeVar("Hook", bound=Callable[..., None])


def walks_once(hook: Hook) -> Hook:
    """A callback hook ``(self, trainer, pl_module, ...)`` whose helpers share one walk of ``pl_module``."""

    @functools.wraps(hook)
    def wrapped(self: Any, trainer: Trainer, pl_module: nn.Module, *args: Any, **kwargs: Any) -> None:
        with one_walk(pl_module):
            hook(self, trainer, pl_module, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


def refresh_no_decay(engine: PhaseEngine, module: nn.Module) -> None:
    """As in FTS, the module's ``no_decay`` is read whenever groups are added: a module may set it in its own setup
    or configure_optimizers, after the callback's setup."""
    no_decay = getattr(module, "no_decay", None)
    if no_decay != engine.groups.no_decay:
        engine.groups = attrs.evolve(engine.groups, no_decay=no_decay)


def store_adapter_state_dict(adapter: StrategyAdapter, checkpoint: dict[str, Any]) -> None:
    """Let an adapter with its own ``lightning_module_state_dict`` decide the checkpoint's ``state_dict`` (the
    default is what Lightning already stored: no second copy)."""
    if type(adapter).lightning_module_state_dict is not StrategyAdapter.lightning_module_state_dict:
        checkpoint["state_dict"] = adapter.lightning_module_state_dict()


def after_adapter_hook(adapter: StrategyAdapter, hook: str, module: nn.Module) -> None:
    """A hook the adapter overrides may change the module's structure (wrap, shard): the next helper walks it
    again. The base hooks change nothing under the module (DDP's re-wrap wraps it from outside)."""
    if getattr(type(adapter), hook) is not getattr(StrategyAdapter, hook):
        forget(module)


__all__ = [
    "PATCHED_BY_SCHEDULER",
    "after_adapter_hook",
    "check_optimizers",
    "enforce_phase0",
    "implicit_reinit",
    "install_reinitialised",
    "last_phase_message",
    "log_fit_metrics",
    "optimizer_state_left_out",
    "refresh_no_decay",
    "release_fit",
    "reload_distributed_optimizer_state",
    "restore_best_checkpoint",
    "route_model_loading",
    "saved_group_sizes",
    "store_adapter_state_dict",
    "thaw_logger",
    "unpatch",
    "unroute_model_loading",
    "walks_once",
    "warn_unused_lambdas",
]
