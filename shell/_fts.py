"""The FinetuningScheduler callback: gathers facts, asks the core, applies the answer.

Hooks, in Lightning's order: ``setup`` (callbacks, adapter, freeze, load + validate the schedule, thaw phase 0),
``load_state_dict`` (on resume), ``on_fit_start`` (check the optimizer, rebuild a resumed fit's groups),
``on_train_epoch_start`` (at most one transition per epoch), ``state_dict`` (at every checkpoint save).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from returns.pipeline import is_successful

from finetuning_scheduler.core import (
    FitState,
    Plan,
    RawSchedule,
    Reason,
    ResolvedSchedule,
    Signals,
    Transition,
    ValidationOptions,
    decided,
    depth_remaining,
    effective_max_epochs,
    make_converter,
    next_transition,
    resume_plan,
    transition_plan,
)

from ._callbacks import FTSCheckpoint, FTSEarlyStopping
from ._dependencies import configure_callback_dependencies
from ._discovery import make_adapter, strategy_flag_of
from ._strategy_adapter import StrategyAdapter
from .driver import ScheduleError
from .schedule_files import read_schedule, write_schedule
from .torch_helpers import (
    add_param_groups,
    freeze,
    group_names,
    optimizer_problems,
    thaw,
    track_bn_running_stats,
    trainable_names,
    truncate_param_groups,
)

log = logging.getLogger("lightning.pytorch.callbacks.finetuning_scheduler")

SUPPORTED_LR_SCHEDULERS = (
    torch.optim.lr_scheduler.LambdaLR,
    torch.optim.lr_scheduler.MultiplicativeLR,
    torch.optim.lr_scheduler.StepLR,
    torch.optim.lr_scheduler.MultiStepLR,
    torch.optim.lr_scheduler.ExponentialLR,
    torch.optim.lr_scheduler.CosineAnnealingLR,
    torch.optim.lr_scheduler.ReduceLROnPlateau,
    torch.optim.lr_scheduler.CosineAnnealingWarmRestarts,
    torch.optim.lr_scheduler.ConstantLR,
    torch.optim.lr_scheduler.LinearLR,
)


class ScheduleValidationError(ScheduleError, MisconfigurationException):
    """The fine-tuning schedule has problems (``diagnostics`` holds every one of them), raised at ``setup``.

    A :class:`ScheduleError` (what the driver for other trainers raises) that Lightning users can also catch as a
    ``MisconfigurationException``.
    """


@attrs.frozen
class TransitionRecord:
    """A phase change that happened during the fit (for logs, traces and summaries).

    Attributes:
        epoch: the epoch at whose start the new phase began.
        depth: the phase entered.
        reason: why the previous phase ended.
        restored_best: whether the best checkpoint was reloaded first.
    """

    epoch: int
    depth: int
    reason: Reason
    restored_best: bool


class FinetuningScheduler(Callback):
    """Fine-tune in phases: each phase thaws more of the model, driven by a schedule (FTS-compatible API).

    Args:
        ft_schedule: a schedule YAML path or dict; ``None`` generates the default (implicit) schedule.
        max_depth: the deepest phase to run (``-1``: the whole schedule).
        base_max_lr: the learning rate of phases > 0 that give none.
        restore_best: reload the best checkpoint before entering each new phase.
        gen_ft_sched_only: write the default schedule to ``log_dir`` and exit.
        epoch_transitions_only: phases end by ``max_transition_epoch`` only (no early stopping).
        reinit_optim_cfg: optimizer reinitialisation (not supported yet: rejected with a clear error).
        reinit_lr_cfg: LR-scheduler reinitialisation (not supported yet: rejected with a clear error).
        strategy_adapter_cfg: keyword arguments for the strategy adapter.
        custom_strategy_adapters: Lightning strategy flag to adapter reference.
        allow_untested: allow strategies and LR schedulers that were not tested with the scheduler.
        apply_lambdas_new_pgs: scale new groups' lr by the scheduler's last lambda.
        logging_level: level of this callback's logger.
        enforce_phase0_params: rebuild the optimizer from phase 0 when ``configure_optimizers`` disagrees.
        frozen_bn_track_running_stats: frozen BatchNorm layers keep tracking running statistics.
        log_dir: where the schedule files go (default: ``trainer.log_dir``, then ``default_root_dir``).
    """

    def __init__(
        self,
        ft_schedule: str | os.PathLike[str] | dict[Any, Any] | None = None,
        max_depth: int = -1,
        base_max_lr: float = 1e-5,
        restore_best: bool = True,
        gen_ft_sched_only: bool = False,
        epoch_transitions_only: bool = False,
        reinit_optim_cfg: dict[str, Any] | None = None,
        reinit_lr_cfg: dict[str, Any] | None = None,
        strategy_adapter_cfg: dict[str, Any] | None = None,
        custom_strategy_adapters: dict[str, str] | None = None,
        allow_untested: bool = False,
        apply_lambdas_new_pgs: bool = False,
        logging_level: int = logging.INFO,
        enforce_phase0_params: bool = True,
        frozen_bn_track_running_stats: bool = True,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        # A private deep copy: the caller's dict is never mutated (FTS rewrites it in place).
        self.ft_schedule: Any = copy.deepcopy(ft_schedule) if isinstance(ft_schedule, Mapping) else ft_schedule
        self.max_depth = max_depth
        self.base_max_lr = base_max_lr
        self.restore_best = restore_best
        self.gen_ft_sched_only = gen_ft_sched_only
        self.epoch_transitions_only = epoch_transitions_only
        self.reinit_optim_cfg = reinit_optim_cfg
        self.reinit_lr_cfg = reinit_lr_cfg
        self.strategy_adapter_cfg = dict(strategy_adapter_cfg or {})
        self.custom_strategy_adapters = custom_strategy_adapters
        self.allow_untested = allow_untested
        self.apply_lambdas_new_pgs = apply_lambdas_new_pgs
        self.logging_level = logging_level
        self.enforce_phase0_params = enforce_phase0_params
        self.frozen_bn_track_running_stats = frozen_bn_track_running_stats
        self._log_dir = log_dir
        log.setLevel(logging_level)
        self.strategy_adapter: StrategyAdapter | None = None
        self.resolved: ResolvedSchedule | None = None
        self.raw_schedule: RawSchedule | Mapping[Any, Any] = {}
        self.transition_history: list[TransitionRecord] = []
        self.restored_best_count = 0
        self._state = FitState()
        self._restored: FitState | None = None
        self._checkpoint_groups: list[int] | None = None
        self._fit_started = False
        self._group_counts: dict[int, int] = {}
        self._trainer: Trainer | None = None
        self._pl_module: LightningModule | None = None
        self._converter = make_converter()

    # -- public state --------------------------------------------------------------------------------------------

    @property
    def curr_depth(self) -> int:
        """The current phase."""
        return self._state.depth

    @property
    def depth_remaining(self) -> int:
        """Phases left to enter."""
        return 0 if self.resolved is None else depth_remaining(self._state, self.resolved)

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
        return ValidationOptions(self.base_max_lr, self.epoch_transitions_only, self.max_depth, reinit_supported=False)

    @property
    def early_stopping(self) -> FTSEarlyStopping | None:
        """The phase-aware early-stopping callback, if any."""
        found = [cb for cb in self.trainer.callbacks if isinstance(cb, FTSEarlyStopping)]
        return found[0] if found else None

    @property
    def checkpoint(self) -> FTSCheckpoint | None:
        """The phase-aware checkpoint callback, if any."""
        found = [cb for cb in self.trainer.callbacks if isinstance(cb, FTSCheckpoint)]
        return found[0] if found else None

    def _info(self, message: str) -> None:
        if self._trainer is None or self._trainer.is_global_zero:
            log.info(message)

    # -- setup ---------------------------------------------------------------------------------------------------

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Prepare the fit: callbacks, adapter, freezing, schedule validation (all errors at once), phase 0."""
        if trainer.state.fn != TrainerFn.FITTING:
            return
        self._trainer, self._pl_module = trainer, pl_module
        self._reject_unsupported_options()
        configure_callback_dependencies(trainer, self)
        self.strategy_adapter = self._make_adapter(trainer)
        self._route_model_loading(trainer, self.strategy_adapter)
        if self.gen_ft_sched_only:
            self._generate_and_exit(trainer)
        self._prepare_early_stopping()
        freeze(pl_module, self.frozen_bn_track_running_stats)
        self.strategy_adapter.on_before_init_fts()
        self.resolved = self._load_and_validate()
        self.max_depth = self.resolved.max_depth
        self.ft_schedule = self.ft_schedule_dict()  # as in FTS: the resolved schedule, names expanded
        self._extend_max_epochs(trainer)
        self._check_translations()
        self._state, self._restored, self.transition_history = FitState(), None, []
        self.restored_best_count, self._checkpoint_groups, self._fit_started = 0, None, False
        self._thaw_phase(0)
        self._sync_final_phase()
        self.strategy_adapter.on_after_init_fts()
        self._announce_depth()

    def _reject_unsupported_options(self) -> None:
        for name in ("reinit_optim_cfg", "reinit_lr_cfg"):
            if getattr(self, name):
                raise MisconfigurationException(
                    f"`{name}` (optimizer/LR-scheduler reinitialisation) is not supported by this release yet. "
                    f"Remove `{name}` to fine-tune with the optimizer and scheduler from configure_optimizers."
                )

    def _strategy_flag(self, trainer: Trainer) -> str:
        flag = trainer._accelerator_connector._strategy_flag
        return strategy_flag_of(trainer.strategy if flag == "auto" else flag)

    def _make_adapter(self, trainer: Trainer) -> StrategyAdapter:
        """Check the strategy flag, then resolve, load and build its adapter (plugins are only imported if chosen)."""
        flag = self._strategy_flag(trainer)
        adapter = make_adapter(flag, self.custom_strategy_adapters, self.strategy_adapter_cfg, self.allow_untested)
        adapter.connect(self)
        return adapter

    @staticmethod
    def _route_model_loading(trainer: Trainer, adapter: StrategyAdapter) -> None:
        """Make the strategy load model weights through the adapter (Lightning restores the model on resume before
        any callback hook could translate the checkpoint). Undone at teardown."""
        strategy = trainer.strategy
        original = vars(strategy).pop("load_model_state_dict", None) or strategy.load_model_state_dict
        adapter.strategy_model_loader = original

        def load_through_adapter(checkpoint: Mapping[str, Any], strict: bool = True) -> None:
            adapter.load_model_state_dict(checkpoint, strict=strict)

        strategy.load_model_state_dict = load_through_adapter  # type: ignore[method-assign]

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Give the strategy its own model loading back."""
        vars(trainer.strategy).pop("load_model_state_dict", None)

    def _generate_and_exit(self, trainer: Trainer) -> None:
        assert self.strategy_adapter is not None
        log_dir = self.log_dir  # a collective (trainer.log_dir broadcasts): every rank must ask
        if trainer.is_global_zero:
            path = self.strategy_adapter.gen_ft_schedule(log_dir)
            self._info(f"Generated the default fine-tuning schedule '{path}'.")
        raise SystemExit(0)

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

    def _load_and_validate(self) -> ResolvedSchedule:
        assert self.strategy_adapter is not None
        self.raw_schedule = self._raw_schedule()
        outcome = self.strategy_adapter.validate_ft_sched()
        if not is_successful(outcome):
            raise ScheduleValidationError(outcome.failure())
        resolved = outcome.unwrap()
        for diagnostic in resolved.warnings:
            rank_zero_warn(diagnostic.render())
        self._save_schedule(resolved)
        return resolved

    def _raw_schedule(self) -> RawSchedule | Mapping[Any, Any]:
        assert self.strategy_adapter is not None
        if not self.ft_schedule:
            if self.max_depth == -1:
                self._info(
                    "No fine-tuning schedule given and max_depth is -1: thawing the whole model, phase by phase."
                )
            path: str | os.PathLike[str] = self._generated_schedule_path()
        elif isinstance(self.ft_schedule, Mapping):
            return self.ft_schedule
        else:
            path = self.ft_schedule
        read = read_schedule(path)
        if not is_successful(read):
            raise ScheduleValidationError(read.failure())
        return read.unwrap()

    def _generated_schedule_path(self) -> Path:
        assert self.strategy_adapter is not None
        log_dir = self.log_dir  # a collective (trainer.log_dir broadcasts): every rank must ask
        target = Path(log_dir) / f"{type(self.pl_module).__name__}_ft_schedule.yaml"
        if self.trainer.is_global_zero:
            target = self.strategy_adapter.gen_ft_schedule(log_dir)
            self._info(f"Generated the default fine-tuning schedule '{target}'.")
        self.trainer.strategy.barrier("fts_generated_schedule")
        return target

    def _save_schedule(self, resolved: ResolvedSchedule) -> None:
        log_dir = self.log_dir  # a collective (trainer.log_dir broadcasts): every rank must ask
        if self.ft_schedule and self.trainer.is_global_zero:
            target = Path(log_dir) / f"{type(self.pl_module).__name__}_ft_schedule.yaml"
            write_schedule(resolved.schedule, target)
            self._info(f"Fine-tuning schedule saved to {target} for reproducibility.")

    def _extend_max_epochs(self, trainer: Trainer) -> None:
        assert self.resolved is not None
        max_epochs = trainer.fit_loop.max_epochs
        if max_epochs is None or max_epochs < 0:
            return
        extended = effective_max_epochs(self.resolved, max_epochs)
        if extended != max_epochs or self.resolved.phases[-1].max_transition_epoch >= 0:
            rank_zero_warn(
                f"The final phase has max_transition_epoch {self.resolved.phases[-1].max_transition_epoch}: "
                f"max_epochs becomes the greater of max_epochs ({max_epochs}) and the largest phase epoch "
                f"({self.resolved.epoch_watermark}), i.e. {extended}."
            )
            trainer.fit_loop.max_epochs = extended

    # -- thawing and groups --------------------------------------------------------------------------------------

    def module_names(self, depth: int) -> list[str]:
        """The module's parameter names of phase ``depth`` (through the adapter's name transform)."""
        assert self.resolved is not None and self.strategy_adapter is not None
        return self.strategy_adapter.fts_optim_transform(list(self.resolved.phases[depth].names))

    def _check_translations(self) -> None:
        """Every name the adapter translates a phase to must be one of the module's parameters: say which are not."""
        assert self.resolved is not None and self.strategy_adapter is not None
        known = {name for name, _ in self.pl_module.named_parameters()}
        unknown = {
            depth: missing
            for depth in range(len(self.resolved.phases))
            if (missing := [name for name in self.module_names(depth) if name not in known])
        }
        if unknown:
            listed = "; ".join(f"phase {depth}: {names[:5]}" for depth, names in unknown.items())
            raise MisconfigurationException(
                f"The strategy adapter {type(self.strategy_adapter).__name__} translated schedule names to parameters "
                f"the module does not have ({listed}). Check its fts_optim_transform (schedule names to module names)."
            )

    def _thaw_phase(self, depth: int) -> tuple[str, ...]:
        newly = thaw(self.pl_module, self.module_names(depth))
        if self.frozen_bn_track_running_stats is False:
            track_bn_running_stats(self.pl_module, self.module_names(depth))
        if newly and log.isEnabledFor(logging.DEBUG) and self.strategy_adapter is not None:
            shown = self.strategy_adapter.logical_param_translation(list(newly))
            log.debug("Phase %d thawed %d parameter(s): %s", depth, len(newly), ", ".join(shown))
        return newly

    def _schedulers(self) -> list[Any]:
        return [config.scheduler for config in self.trainer.lr_scheduler_configs]

    def _add_phase_groups(self, optimizer: torch.optim.Optimizer, phase: int, lr: float, extend: bool) -> None:
        added = add_param_groups(
            optimizer,
            self.pl_module,
            self.module_names(phase),
            lr,
            name=f"phase{phase}",
            no_decay=getattr(self.pl_module, "no_decay", None),
            schedulers=self._schedulers() if extend else (),
            apply_lambdas=self.apply_lambdas_new_pgs,
        )
        self._group_counts[phase] = added
        if added == 0:
            rank_zero_warn(f"Phase {phase} thawed no parameter that is not already optimized: no group added.")

    def _groups_through(self, depth: int) -> int:
        return sum(self._group_counts.get(phase, 0) for phase in range(depth + 1))

    # -- fit start -----------------------------------------------------------------------------------------------

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Check the optimizer against phase 0 and, when resuming, rebuild the checkpoint's param groups."""
        if self.strategy_adapter is None:
            return
        self.strategy_adapter.on_before_fts_fit_start()
        self._check_optimizers(trainer)
        self._check_phase0_optimizer(trainer.optimizers[0])
        self._group_counts = {0: len(trainer.optimizers[0].param_groups)}
        self._fit_started = True
        if self._restored is not None:
            self._resume(self._restored)
        self._warn_unused_lambdas()

    def _check_optimizers(self, trainer: Trainer) -> None:
        if len(trainer.optimizers) != 1:
            raise MisconfigurationException(
                f"FinetuningScheduler supports a single-optimizer configuration; configure_optimizers returned "
                f"{len(trainer.optimizers)} optimizers."
            )
        for scheduler in self._schedulers()[:1]:
            if isinstance(scheduler, SUPPORTED_LR_SCHEDULERS):
                continue
            names = [cls.__name__ for cls in SUPPORTED_LR_SCHEDULERS]
            message = f"The LR scheduler {type(scheduler).__name__} is not supported by FinetuningScheduler"
            if not self.allow_untested:
                raise MisconfigurationException(
                    f"{message}; use one of {names} (or a subclass), or pass allow_untested=True to try it anyway."
                )
            rank_zero_warn(f"{message}; allowing it because allow_untested=True.")

    def _check_phase0_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        expected = set(self.module_names(0))
        params = dict(self.pl_module.named_parameters())
        in_optimizer = [name for names in group_names(optimizer, self.pl_module) for name in names]
        frozen_in_optimizer = [name for name in in_optimizer if name in params and not params[name].requires_grad]
        trainable_in_optimizer = {name for name in in_optimizer if name in params and params[name].requires_grad}
        if trainable_in_optimizer == expected and not frozen_in_optimizer:
            return
        summary = (
            f"the optimizer from configure_optimizers holds {len(trainable_in_optimizer)} trainable and "
            f"{len(frozen_in_optimizer)} frozen parameter(s), but phase 0 thaws {len(expected)}"
        )
        if self.enforce_phase0_params:
            self._info(
                f"Phase 0 enforced: {summary}. The optimizer's groups were rebuilt from phase 0 "
                "(per-group settings from configure_optimizers are replaced by the optimizer's defaults)."
            )
            self._rebuild_phase0(optimizer)
            return
        missing = sorted(expected - trainable_in_optimizer)
        extra = sorted(trainable_in_optimizer - expected)
        rank_zero_warn(
            f"{summary} (enforce_phase0_params=False, so it is left as is). Phase-0 parameters missing from the "
            f"optimizer: {missing[:10]}; trainable parameters not in phase 0: {extra[:10]}"
            + (
                f"; {len(frozen_in_optimizer)} parameters in the optimizer do not require a gradient: filter them "
                "with `[p for p in self.parameters() if p.requires_grad]`."
                if frozen_in_optimizer
                else ""
            )
        )

    def _rebuild_phase0(self, optimizer: torch.optim.Optimizer) -> None:
        schedulers = self._schedulers()
        original_groups = len(optimizer.param_groups)
        optimizer.param_groups.clear()
        optimizer.state.clear()
        for scheduler in schedulers:
            scheduler.last_epoch = -1
            if not hasattr(scheduler, "min_lrs"):
                scheduler.base_lrs = []
        self._add_phase_groups(optimizer, 0, optimizer.defaults["lr"], extend=True)
        for scheduler in schedulers:
            if hasattr(scheduler, "min_lrs"):
                scheduler.min_lrs = scheduler.min_lrs[original_groups:]
            else:
                scheduler._initial_step()

    def _warn_unused_lambdas(self) -> None:
        if self.apply_lambdas_new_pgs or self.max_depth == 0:
            return
        if any(getattr(s, "lr_lambdas", None) for s in self._schedulers()):
            rank_zero_warn(
                "The LR scheduler has lr_lambdas, but new phases' groups start at their configured lr because "
                "apply_lambdas_new_pgs is False; set it to True to scale them by the current lambda."
            )

    # -- resume --------------------------------------------------------------------------------------------------

    def _resume(self, restored: FitState) -> None:
        assert self.resolved is not None
        if restored.depth >= len(self.resolved.phases):
            raise MisconfigurationException(
                f"The checkpoint was saved in phase {restored.depth}, but the schedule has only "
                f"{len(self.resolved.phases)} phases (0..{len(self.resolved.phases) - 1}); resume with the schedule "
                "the checkpoint was trained with."
            )
        self._apply_plan(resume_plan(restored, self.resolved), extend=True)
        assert self.strategy_adapter is not None
        self.strategy_adapter.on_trainable_changed()
        self._state = restored
        self._sync_final_phase()
        self._check_against_checkpoint()
        self._info(f"Resumed fine-tuning at phase {restored.depth}.")
        self._announce_depth()

    def _check_against_checkpoint(self) -> None:
        optimizer = self.trainer.optimizers[0]
        problems = optimizer_problems(optimizer, self.pl_module, self._schedulers())
        saved = self._checkpoint_groups
        sizes = [len(group["params"]) for group in optimizer.param_groups]
        if saved is not None and saved != sizes:
            problems.append(f"the checkpoint's optimizer has groups of sizes {saved}, the schedule gives {sizes}")
        if problems:
            raise MisconfigurationException(
                "The checkpoint cannot be matched to the fine-tuning schedule:\n  - "
                + "\n  - ".join(problems)
                + "\nResume with the schedule, max_depth and no_decay the checkpoint was trained with."
            )

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Note the group sizes of the checkpoint's optimizer, to check the rebuilt optimizer against them."""
        states = checkpoint.get("optimizer_states") or []
        if states:
            self._checkpoint_groups = [len(group["params"]) for group in states[0]["param_groups"]]

    # -- epochs --------------------------------------------------------------------------------------------------

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Enter the next phase if the core says so (at most one per epoch), then log the depth."""
        if self.resolved is None:
            return
        es = self.early_stopping
        signals = Signals(trainer.current_epoch, bool(es and es.es_phase_complete), self.epoch_transitions_only)
        transition = next_transition(self._state, self.resolved, signals)
        if transition is not None:
            self._transition(transition)
        self._state = decided(self._state, trainer.current_epoch)
        self._sync_final_phase()
        self._log_metrics(trainer)

    def _transition(self, transition: Transition) -> None:
        assert self.resolved is not None
        best = self.checkpoint.best_model_path if self.checkpoint is not None else ""
        restore = bool(self.restore_best and best)
        plan = transition_plan(self._state, self.resolved, transition, restore)
        self._apply_plan(plan, extend=True, best_path=best)
        assert self.strategy_adapter is not None
        self.strategy_adapter.on_trainable_changed()
        self._state = attrs.evolve(self._state, depth=transition.to_depth)
        self.transition_history.append(
            TransitionRecord(self.trainer.current_epoch, transition.to_depth, transition.reason, restore)
        )
        es = self.early_stopping
        if es is not None:
            es.reset_phase()
        self._info(
            f"Phase {transition.to_depth} begins at epoch {self.trainer.current_epoch} ({transition.reason.value})."
        )
        self._announce_depth()

    def _apply_plan(self, plan: Plan, extend: bool, best_path: str = "") -> None:
        optimizer = self.trainer.optimizers[0]
        pre_lrs = [group["lr"] for group in optimizer.param_groups]
        pre_states = [copy.deepcopy(s.state_dict()) for s in self._schedulers()]
        if plan.restore_best:
            self._restore_best(best_path, self._groups_through(plan.keep_through))
        for group in plan.add[:-1]:
            self._thaw_phase(group.phase)
            self._add_phase_groups(optimizer, group.phase, group.lr, extend=not plan.restore_best)
        if plan.restore_best:
            self._restore_latest_lr_state(optimizer, pre_lrs, pre_states)
        for group in plan.add[-1:]:
            self._thaw_phase(group.phase)
            self._add_phase_groups(optimizer, group.phase, group.lr, extend=extend)

    def _restore_best(self, path: str, keep_groups: int) -> None:
        assert self.strategy_adapter is not None
        checkpoint = self.trainer.strategy.load_checkpoint(path)
        try:
            checkpoint = self.strategy_adapter.before_restore_model(checkpoint)
        except Exception as exc:  # an adapter's hook must not lose the fit; FTS warns and goes on too
            rank_zero_warn(f"Strategy adapter before_restore_model hook raised: {exc!r}; restoring unchanged.")
        self.strategy_adapter.load_model_state_dict(checkpoint, strict=True)
        optimizer = self.trainer.optimizers[0]
        truncate_param_groups(optimizer, keep_groups)
        self.strategy_adapter.on_before_restore_optimizers_and_lrs()
        optimizer.load_state_dict(checkpoint["optimizer_states"][0])
        self.restored_best_count += 1

    def _restore_latest_lr_state(
        self, optimizer: torch.optim.Optimizer, lrs: Sequence[float], states: Sequence[dict[str, Any]]
    ) -> None:
        # Restoring the best checkpoint rolls weights back, never the LR schedule: it continues from where it was.
        for scheduler, state in zip(self._schedulers(), states, strict=False):
            scheduler.load_state_dict(state)
        for group, lr in zip(optimizer.param_groups, lrs, strict=False):
            group["lr"] = lr

    def _announce_depth(self) -> None:
        if self.depth_remaining > 0:
            return
        es_active = self.early_stopping is not None and not self.epoch_transitions_only
        ending = "early stopping or max_epochs" if es_active else "max_epochs"
        self._info(
            f"Phase {self.curr_depth} is the last one (max_depth {self.max_depth}): training ends by {ending} "
            f"(max_epochs={self.trainer.max_epochs})."
        )

    def _log_metrics(self, trainer: Trainer) -> None:
        trainable = sum(p.numel() for p in self.pl_module.parameters() if p.requires_grad)
        metrics = {"finetuning/depth": float(self.curr_depth), "finetuning/trainable_params": float(trainable)}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The fit state as plain data (checkpoints load with ``weights_only=True``)."""
        ckpt = self.checkpoint if self._trainer is not None else None
        if ckpt is not None and ckpt.saving_new_best:
            self._state = attrs.evolve(self._state, best_ckpt_depth=self._state.depth)
        return {"fit_state": self._converter.unstructure(self._state), "format": 1}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Apply the saved fit state once the optimizer exists: in ``on_fit_start``, or right away for strategies
        that restore checkpoints after their setup (FSDP, model parallel), whose callbacks load after fit start.
        Either way before Lightning restores the optimizer's state."""
        if "fit_state" not in state_dict:
            raise MisconfigurationException(
                "This checkpoint's FinetuningScheduler state was not written by this package (no 'fit_state'); "
                "resume from a checkpoint saved with it, or start a new fit."
            )
        self._restored = self._converter.structure(state_dict["fit_state"], FitState)
        if self._fit_started:
            self._resume(self._restored)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Let the adapter decide the ``state_dict`` stored in the checkpoint."""
        adapter = self.strategy_adapter
        overridden = type(adapter).lightning_module_state_dict is not StrategyAdapter.lightning_module_state_dict
        if adapter is not None and overridden:  # the default is what Lightning already stored: no second copy
            checkpoint["state_dict"] = adapter.lightning_module_state_dict()

    def ft_schedule_dict(self) -> dict[int, Any]:
        """The resolved schedule as plain data (concrete names, defaults applied)."""
        return {} if self.resolved is None else self.resolved.as_data()

    def trainable(self) -> tuple[str, ...]:
        """Names of the parameters that are trainable now."""
        return trainable_names(self.pl_module)


__all__ = ["FinetuningScheduler", "ScheduleValidationError", "TransitionRecord"]
