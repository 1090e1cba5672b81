"""The strategy adapter base class: the override points through which the scheduler meets a strategy or a naming.

Every default delegates to the pure core or to the Lightning strategy, so an adapter overrides only what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.strategies import Strategy
from returns.result import Result
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from finetuning_scheduler.core import (
    Diagnostics,
    GenerationPolicy,
    ParamInventory,
    ResolvedSchedule,
    Schedule,
    generate,
    resolve_schedule,
)

from ..engine import collector_paused, inventory, param_index, schedule_file_name, write_schedule
from ._views import SchedulerView


class StrategyAdapter:
    """Adapts the scheduler to a training strategy or a parameter naming.

    Lifecycle (in call order): ``connect``, ``on_before_init_fts``, ``validate_ft_sched`` (or
    ``gen_ft_schedule`` first in implicit mode), ``on_after_init_fts``, ``on_before_fts_fit_start``, and
    ``on_fit_teardown`` when the fit ends (also after an exception); at every thaw
    ``fts_optim_transform``, then ``on_trainable_changed`` once a phase (or a resumed fit) is in place; when the
    best checkpoint is restored ``before_restore_model``, ``load_model_state_dict`` and
    ``on_before_restore_optimizers_and_lrs``; whenever a checkpoint is saved ``lightning_module_state_dict``, and
    whenever Lightning loads model weights (on resume too) ``load_model_state_dict``.

    Override ``get_named_params_for_schedule_validation`` (and the two name translations) to let users write
    schedules in other names; override ``validate_ft_sched`` to replace validation entirely.
    """

    fts_handle: SchedulerView

    def __init__(self) -> None:
        """Adapters are built as ``cls(**strategy_adapter_cfg)``; the base takes no options."""

    # -- connection and conveniences -----------------------------------------------------------------------------

    def connect(self, fts_parent: SchedulerView) -> None:
        """Attach to the scheduler callback."""
        self.fts_handle = fts_parent

    @property
    def pl_module(self) -> LightningModule:
        """The LightningModule being fine-tuned."""
        return self.fts_handle.pl_module

    @property
    def trainer(self) -> Trainer:
        """The Trainer running the fit."""
        return self.fts_handle.trainer

    @property
    def pls_handle(self) -> Strategy:
        """The Lightning strategy."""
        return self.trainer.strategy

    @property
    def using_sharded_optimizer(self) -> bool:
        """Whether the optimizer is sharded (ZeRO-style)."""
        return hasattr(self.trainer.optimizers[0], "consolidate_state_dict")

    # -- lifecycle hooks -----------------------------------------------------------------------------------------

    def on_before_init_fts(self) -> None:
        """Called before the schedule is loaded and validated."""

    def on_after_init_fts(self) -> None:
        """Called after the schedule is validated and phase 0 is thawed."""

    def on_before_fts_fit_start(self) -> None:
        """Called at the start of ``on_fit_start``, before the optimizer is checked."""

    def on_fit_teardown(self) -> None:
        """Called when the fit ends, normally or by an exception: undo what the adapter changed on the strategy or
        the module (patched methods, wrapping policies), so that neither keeps a reference to this fit."""

    # -- schedules -----------------------------------------------------------------------------------------------

    def get_named_params_for_schedule_validation(self) -> dict[str, nn.Parameter]:
        """The parameters, by the names schedules use. The default: the module's own names."""
        return dict(param_index(self.pl_module).named)

    def schedule_inventory(self) -> ParamInventory:
        """The parameters as data, by schedule names (built from ``get_named_params_for_schedule_validation``)."""
        if (
            type(self).get_named_params_for_schedule_validation
            is StrategyAdapter.get_named_params_for_schedule_validation
        ):
            return inventory(self.pl_module)
        named = self.get_named_params_for_schedule_validation()
        return ParamInventory(
            tuple(named),
            numels=tuple(p.numel() for p in named.values()),
            shapes=tuple(tuple(p.shape) for p in named.values()),
            dtypes=tuple(str(p.dtype).removeprefix("torch.") for p in named.values()),
            modules=tuple(n.rpartition(".")[0] for n in named),
        )

    def validate_ft_sched(self) -> Result[ResolvedSchedule, Diagnostics]:
        """Validate the scheduler's schedule against the model: the resolved schedule or every problem."""
        fts = self.fts_handle
        with collector_paused():
            return resolve_schedule(fts.raw_schedule, self.schedule_inventory(), fts.validation_options)

    def default_schedule(self) -> Schedule:
        """The implicit schedule (FTS's policy), in memory: the fit uses it as it is, and writes it for the user."""
        with collector_paused():
            return generate(self.schedule_inventory(), GenerationPolicy.FTS)

    def gen_ft_schedule(self, dump_loc: str | Path) -> Path:
        """Generate the implicit schedule (FTS's policy) and write it to ``{dump_loc}/{Module}_ft_schedule.yaml``."""
        return write_schedule(self.default_schedule(), Path(dump_loc) / schedule_file_name(self.pl_module))

    def on_trainable_changed(self) -> None:
        """Called on every process after a phase (or a resumed fit) changed which parameters are trainable.

        PyTorch's DistributedDataParallel registers, when it wraps the model, only the parameters that require
        gradients; parameters thawed later would be trained separately on each process and drift apart. The default
        wraps the model again (DDP broadcasts rank 0's weights when it does, so every process starts the phase
        identical). Strategies that shard parameters override this.
        """
        strategy = self.pls_handle
        if isinstance(getattr(strategy, "model", None), DistributedDataParallel) and hasattr(strategy, "configure_ddp"):
            strategy.model = self.pl_module
            strategy.configure_ddp()

    # -- names ---------------------------------------------------------------------------------------------------

    def fts_optim_transform(self, orig_pl: list[str], inspect_only: bool = False) -> list[str]:
        """Schedule names to the module's parameter names (what to thaw and put in the optimizer).

        >>> StrategyAdapter().fts_optim_transform(["head.weight"])
        ['head.weight']
        """
        return list(orig_pl)

    def logical_param_translation(self, param_names: list[str]) -> list[str]:
        """Module parameter names back to schedule names (for logs and messages)."""
        return list(param_names)

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def before_restore_model(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """Adjust a checkpoint before the model is restored from it (the best checkpoint, at a transition)."""
        return checkpoint

    def on_before_restore_optimizers_and_lrs(self) -> None:
        """Called before optimizer and LR-scheduler state is restored from the best checkpoint."""

    def lightning_module_state_dict(self) -> dict[str, Any]:
        """The ``state_dict`` stored in checkpoints. The default: the strategy's."""
        return dict(self.pls_handle.lightning_module_state_dict())

    def load_model_state_dict(self, checkpoint: Mapping[str, Any], strict: bool = True) -> None:
        """Load a checkpoint's ``state_dict`` into the model. The default: the strategy's own loading.

        The scheduler routes the strategy's loading through this method for the whole fit, so it also runs when
        Lightning restores the model on resume (``fit(ckpt_path=...)``), not only for ``restore_best``.
        """
        load = self.strategy_model_loader or self.pls_handle.load_model_state_dict
        load(checkpoint, strict=strict)

    restores_optimizer_in_place: bool = False
    """Whether the strategy's ``load_checkpoint`` loads the optimizer's state itself (FSDP reshards it), so that
    ``restore_best`` lets it, after truncating the optimizer to the checkpoint's groups, instead of loading the
    saved state dict into the optimizer directly. Distributed checkpoint folders are always loaded so."""

    strategy_model_loader: Any = None
    """The strategy's own ``load_model_state_dict`` while the scheduler routes it through the adapter."""
