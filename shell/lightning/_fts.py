"""The FinetuningScheduler callback: gathers Lightning's facts and hands them to the phase engine.

Hooks, in Lightning's order: ``setup`` (callbacks, adapter, load + validate the schedule, phase 0), ``load_state_dict``
(on resume), ``on_fit_start`` (attach the optimizer, phase-0 enforcement, rebuild a resumed fit's groups),
``on_train_epoch_start`` (at most one transition per epoch), ``state_dict`` (at every checkpoint save). What a
phase does to the model and optimizer is the engine's (``shell/engine``), shared with the driver for other loops.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_warn  # type: ignore[attr-defined]
from typing_extensions import override

from finetuning_scheduler.core import ImplicitReinit, RawSchedule, ResolvedSchedule, ValidationOptions

from ..engine import (
    CheckpointMismatchError,
    GroupPolicy,
    PhaseChange,
    PhaseEngine,
    RestoreBest,
    ScheduleWarning,
    forget,
    freeze,
    trainable_names,
)
from ._adapters import make_adapter, strategy_flag_of
from ._callbacks import FTSCheckpoint, FTSEarlyStopping
from ._dependencies import configure_callback_dependencies
from ._errors import LightningCheckpointMismatchError, ScheduleValidationError
from ._fit_steps import (
    after_adapter_hook,
    check_optimizers,
    enforce_phase0,
    implicit_reinit,
    install_reinitialised,
    last_phase_message,
    log_fit_metrics,
    refresh_no_decay,
    release_fit,
    reload_distributed_optimizer_state,
    restore_best_checkpoint,
    route_model_loading,
    saved_group_sizes,
    store_adapter_state_dict,
    thaw_logger,
    walks_once,
    warn_unused_lambdas,
)
from ._fts_arguments import SchedulerArguments
from ._schedule_setup import ScheduleSetup
from ._strategy_adapter import StrategyAdapter
from ._trace import TraceWriter, trace_file_name
from ._views import first_callback

log = logging.getLogger("lightning.pytorch.callbacks.finetuning_scheduler")


TransitionRecord = PhaseChange
"""A phase change of the fit (``transition_history``): the engine's record, under the callback's historical name."""


class FinetuningScheduler(SchedulerArguments, Callback):
    """Fine-tune in phases: each phase thaws more of the model, driven by a schedule (FTS-compatible API).

    The constructor arguments (checked when given: one error names every bad one) are those of
    :class:`SchedulerArguments`.
    """

    @override
    def _fresh_state(self) -> None:
        """The state of a fit, before any (the constructor calls it)."""
        self.strategy_adapter: StrategyAdapter | None = None
        self.resolved: ResolvedSchedule | None = None
        self.raw_schedule: RawSchedule | Mapping[Any, Any] = {}
        self.engine: PhaseEngine | None = None
        self.restored_best_count = 0
        self._saved_state: Mapping[str, Any] | None = None
        self._history_start = 0
        self._checkpoint_groups: list[int] | None = None
        self._fit_started = False
        self._trainer: Trainer | None = None
        self._pl_module: LightningModule | None = None
        self._trace: TraceWriter | None = None

    # -- public state --------------------------------------------------------------------------------------------

    @property
    def curr_depth(self) -> int:
        """The current phase."""
        return 0 if self.engine is None else self.engine.depth

    @property
    def depth_remaining(self) -> int:
        """Phases left to enter."""
        return 0 if self.engine is None else self.engine.depth_remaining

    @property
    def transition_history(self) -> list[PhaseChange]:
        """The phase changes this fit made (a resumed fit's earlier ones are in ``engine.history``)."""
        return [] if self.engine is None else self.engine.history[self._history_start :]

    @property
    def trainer(self) -> Trainer:
        """The Trainer of the current fit."""
        if self._trainer is None:
            raise RuntimeError("FinetuningScheduler is not attached to a Trainer yet (setup has not run)")
        return self._trainer

    @property
    def pl_module(self) -> LightningModule:
        """The LightningModule of the current fit."""
        if self._pl_module is None:
            raise RuntimeError("FinetuningScheduler is not attached to a LightningModule yet (setup has not run)")
        return self._pl_module

    @property
    def log_dir(self) -> str:
        """Where schedule files go: ``log_dir``, else ``trainer.log_dir``, else ``trainer.default_root_dir``."""
        if self._log_dir is not None:
            return os.fspath(self._log_dir)
        return self.trainer.log_dir or self.trainer.default_root_dir

    @property
    def validation_options(self) -> ValidationOptions:
        """The options the schedule is validated with."""
        return ValidationOptions(self.base_max_lr, self.epoch_transitions_only, self.max_depth)

    @property
    def early_stopping(self) -> FTSEarlyStopping | None:
        """The phase-aware early-stopping callback, if any."""
        return first_callback(self.trainer, FTSEarlyStopping)

    @property
    def checkpoint(self) -> FTSCheckpoint | None:
        """The phase-aware checkpoint callback, if any."""
        return first_callback(self.trainer, FTSCheckpoint)

    def _require_engine(self) -> PhaseEngine:
        if self.engine is None:
            raise RuntimeError("FinetuningScheduler has no fit in progress (setup has not run for fitting)")
        return self.engine

    def _info(self, message: str) -> None:
        if self._trainer is None or self._trainer.is_global_zero:
            log.info(message)

    # -- setup ---------------------------------------------------------------------------------------------------

    @override
    @walks_once
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Prepare the fit: callbacks, adapter, freezing, schedule validation (all errors at once), phase 0."""
        if trainer.state.fn != TrainerFn.FITTING:
            return
        self._trainer, self._pl_module = trainer, pl_module
        implicit = implicit_reinit(self.reinit_optim_cfg, self.reinit_lr_cfg, self.ft_schedule)
        configure_callback_dependencies(trainer, self)
        adapter = self.strategy_adapter = self._make_adapter(trainer)
        route_model_loading(trainer.strategy, adapter)
        schedules = ScheduleSetup(self, adapter, self._info)
        if self.gen_ft_sched_only:
            schedules.generate_and_exit()
        self._prepare_early_stopping()
        freeze(pl_module, self.frozen_bn_track_running_stats)
        adapter.on_before_init_fts()
        after_adapter_hook(adapter, "on_before_init_fts", pl_module)
        self.resolved = schedules.load_and_validate(implicit)
        self.max_depth = self.resolved.max_depth
        self._ft_schedule_from_resolved()  # as in FTS: the resolved schedule, names expanded
        schedules.extend_max_epochs(self.resolved)
        schedules.check_translations(self.resolved)
        self.engine = self._make_engine(self.resolved, adapter, implicit)
        self.restored_best_count, self._checkpoint_groups, self._fit_started = 0, None, False
        self._saved_state, self._history_start = None, 0
        self._trace = TraceWriter(Path(self.log_dir) / trace_file_name(pl_module), trainer.is_global_zero)
        self.engine.start()
        self._trace.count_trainable(pl_module)  # in setup's one walk of the module
        self._sync_final_phase()
        adapter.on_after_init_fts()
        self._announce_depth()

    def _make_engine(
        self, resolved: ResolvedSchedule, adapter: StrategyAdapter, implicit: ImplicitReinit
    ) -> PhaseEngine:
        return PhaseEngine(
            self.pl_module,
            resolved,
            to_module_names=adapter.fts_optim_transform,
            groups=GroupPolicy(getattr(self.pl_module, "no_decay", None), apply_lambdas=self.apply_lambdas_new_pgs),
            bn_track_running_stats=self.frozen_bn_track_running_stats,
            warn=lambda message: rank_zero_warn(message, category=ScheduleWarning),
            on_thaw=thaw_logger(adapter, log),
            implicit=implicit,
            on_replace=lambda optimizer, schedulers, spec: install_reinitialised(
                self.trainer, optimizer, schedulers, spec
            ),
        )

    def _make_adapter(self, trainer: Trainer) -> StrategyAdapter:
        """Check the strategy flag, then resolve, load and build its adapter (plugins are only imported if chosen)."""
        flag = trainer._accelerator_connector._strategy_flag
        flag = strategy_flag_of(trainer.strategy if flag == "auto" else flag)
        adapter = make_adapter(flag, self.custom_strategy_adapters, self.strategy_adapter_cfg, self.allow_untested)
        adapter.connect(self)
        return adapter

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Give the strategy its own model loading back, and let the adapter undo its own changes."""
        self._release(trainer)

    @override
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Lightning calls no ``teardown`` after an exception: release the strategy and the module here too."""
        self._release(trainer)

    def _release(self, trainer: Trainer) -> None:
        release_fit(trainer, self.strategy_adapter)

    def _prepare_early_stopping(self) -> None:
        # A new fit starts with no phase converged; final_phase follows the depth (_sync_final_phase).
        es = self.early_stopping
        if es is not None and not self.epoch_transitions_only:
            es.es_phase_complete = False

    def _sync_final_phase(self) -> None:
        """Early stopping ends the run only in the final phase; elsewhere it ends the phase."""
        es = self.early_stopping
        if es is not None and not self.epoch_transitions_only:
            es.final_phase = self.depth_remaining == 0

    def module_names(self, depth: int) -> list[str]:
        """The module's parameter names of phase ``depth`` (through the adapter's name transform)."""
        return self._require_engine().module_names(depth)

    # -- fit start -----------------------------------------------------------------------------------------------

    @override
    @walks_once
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Attach the optimizer, hold it to phase 0 and, when resuming, rebuild the checkpoint's param groups."""
        if self.strategy_adapter is None or self.engine is None:
            return
        self.strategy_adapter.on_before_fts_fit_start()
        after_adapter_hook(self.strategy_adapter, "on_before_fts_fit_start", pl_module)
        check_optimizers(trainer, self.allow_untested)
        refresh_no_decay(self.engine, self.pl_module)
        self.engine.attach(trainer.optimizers[0], [config.scheduler for config in trainer.lr_scheduler_configs])
        if enforce_phase0(self.engine, self.enforce_phase0_params, self._info):
            self._trainable_changed()
        problems = self.engine.init_pg_lrs_problems()
        if problems:
            raise ScheduleValidationError(problems)
        self._fit_started = True
        if self._saved_state is not None:
            self._resume(self._saved_state)
        if not self.apply_lambdas_new_pgs and self.max_depth != 0:
            warn_unused_lambdas(self.engine)

    # -- resume --------------------------------------------------------------------------------------------------

    def _resume(self, saved: Mapping[str, Any]) -> None:
        engine = self._require_engine()
        self._saved_state = None
        try:
            engine.load_state_dict(saved, self.accept_changed_schedule)
            restored = engine.resume_pending(self._checkpoint_groups)
        except CheckpointMismatchError as mismatch:
            raise LightningCheckpointMismatchError(str(mismatch)) from None
        assert self.strategy_adapter is not None and restored is not None
        self._history_start = len(engine.history)
        if self._fit_started:
            reload_distributed_optimizer_state(self.trainer, self.strategy_adapter.restores_optimizer_in_place)
        self._trainable_changed()
        self._sync_final_phase()
        self._info(f"Resumed fine-tuning at phase {restored.depth}.")
        self._announce_depth()

    @override
    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Note the group sizes of the checkpoint's optimizer, to check the rebuilt optimizer against them."""
        states = checkpoint.get("optimizer_states") or []
        if states and self.strategy_adapter is not None:
            self._checkpoint_groups = saved_group_sizes(states[0], self.strategy_adapter)

    # -- epochs --------------------------------------------------------------------------------------------------

    @override
    @walks_once
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Enter the next phase if the core says so (at most one per epoch), then log the depth."""
        engine = self.engine
        if engine is None:
            return
        es = self.early_stopping
        best = self.checkpoint.best_model_path if self.checkpoint is not None else ""
        refresh_no_decay(engine, self.pl_module)
        change = engine.epoch_start(
            trainer.current_epoch,
            phase_converged=bool(es and es.es_phase_complete),
            epoch_transitions_only=self.epoch_transitions_only,
            restore=self._restorer(best) if self.restore_best and best else None,
        )
        if change is not None:
            self._entered(change)
        self._sync_final_phase()
        log_fit_metrics(trainer, self.pl_module, self.curr_depth)
        if self._trace is not None and self._trace.enabled:
            reason = change.reason if change is not None else None
            optimizer = engine.require_optimizer()
            self._trace.epoch_started(trainer.current_epoch, engine.depth, reason, optimizer, pl_module)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the epoch's trace entry (rank zero), with the monitored metric validation just logged."""
        if self._trace is not None:
            watcher = self.early_stopping or self.checkpoint
            self._trace.epoch_ended(watcher.monitor if watcher else None, dict(trainer.callback_metrics))

    def _restorer(self, path: str) -> RestoreBest:
        adapter = self.strategy_adapter
        assert adapter is not None

        def restore(keep_groups: int | None) -> None:
            restore_best_checkpoint(self.trainer, adapter, path, keep_groups)
            forget(self.pl_module)  # the adapter's restore hooks may re-wrap the module
            self.restored_best_count += 1

        return restore

    def _trainable_changed(self) -> None:
        assert self.strategy_adapter is not None
        if self._trace is not None:
            self._trace.trainable_changed()
        self.strategy_adapter.on_trainable_changed()
        after_adapter_hook(self.strategy_adapter, "on_trainable_changed", self.pl_module)

    def _entered(self, change: PhaseChange) -> None:
        self._trainable_changed()
        es = self.early_stopping
        if es is not None:
            es.reset_phase()
        self._info(f"Phase {change.depth} begins at epoch {change.epoch} ({change.reason.value}).")
        self._announce_depth()

    def _announce_depth(self) -> None:
        if self.depth_remaining == 0:
            es_active = self.early_stopping is not None and not self.epoch_transitions_only
            self._info(last_phase_message(self.curr_depth, self.max_depth, es_active, self.trainer.max_epochs))

    # -- checkpoints ---------------------------------------------------------------------------------------------

    @override
    def state_dict(self) -> dict[str, Any]:
        """The fit state and history as plain data (checkpoints load with ``weights_only=True``)."""
        if self.engine is None:
            return dict(self._saved_state or {})
        ckpt = self.checkpoint if self._trainer is not None else None
        if ckpt is not None and ckpt.saving_new_best:
            self.engine.note_best_checkpoint()
        return self.engine.state_dict()

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Apply the saved fit state once the optimizer exists: in ``on_fit_start``, or right away for strategies
        that restore checkpoints after their setup (FSDP, model parallel), whose callbacks load after fit start.
        Either way before Lightning restores the optimizer's state."""
        if "fit_state" not in state_dict:
            raise LightningCheckpointMismatchError(
                "This checkpoint's FinetuningScheduler state was not written by this package (no 'fit_state'); "
                "resume from a checkpoint saved with it, or start a new fit."
            )
        self._saved_state = state_dict
        if self._fit_started:
            self._resume(state_dict)

    @override
    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Let the adapter decide the ``state_dict`` stored in the checkpoint."""
        if self.strategy_adapter is not None:
            store_adapter_state_dict(self.strategy_adapter, checkpoint)

    @override
    def ft_schedule_dict(self) -> dict[int, Any]:
        """The resolved schedule as plain data (concrete names, defaults applied)."""
        return {} if self.resolved is None else self.resolved.as_data()

    def trainable(self) -> tuple[str, ...]:
        """Names of the parameters that are trainable now."""
        return trainable_names(self.pl_module)


__all__ = ["FinetuningScheduler", "LightningCheckpointMismatchError", "ScheduleValidationError", "TransitionRecord"]
