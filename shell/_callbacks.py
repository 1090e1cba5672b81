"""FTSEarlyStopping and FTSCheckpoint: Lightning's callbacks, taught that a fit has phases."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor

if TYPE_CHECKING:
    from ._fts import FinetuningScheduler


def find_scheduler(trainer: Trainer, requester: type) -> FinetuningScheduler:
    """The FinetuningScheduler among the trainer's callbacks (recognised by its attributes, as FTS does)."""
    found = [cb for cb in trainer.callbacks if hasattr(cb, "ft_schedule") and hasattr(cb, "max_depth")]
    base = "ModelCheckpoint" if issubclass(requester, ModelCheckpoint) else "EarlyStopping"
    if not found:
        raise MisconfigurationException(
            f"{requester.__name__} only works together with a FinetuningScheduler callback. Add a "
            f"FinetuningScheduler to the Trainer's callbacks, or use Lightning's standard {base} callback."
        )
    if len(found) > 1:
        raise MisconfigurationException(
            f"{len(found)} FinetuningScheduler callbacks were given; use of multiple FinetuningScheduler callbacks "
            "is not supported. Please provide a maximum of one."
        )
    return found[0]  # type: ignore[return-value]


class FTSEarlyStopping(EarlyStopping):
    """Early stopping that ends a *phase* instead of the run, until the final phase.

    Takes Lightning's ``EarlyStopping`` arguments. When the monitored metric stops improving in a phase that is
    not the last, the phase is marked complete (``es_phase_complete``) and training goes on; the scheduler then
    enters the next phase at the start of the next epoch. Non-finite metrics and the stopping/divergence thresholds
    still stop the whole run. ``best_score`` carries over between phases, as in FTS.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.es_phase_complete = True
        self.final_phase = True
        self.finetuningscheduler_callback: FinetuningScheduler | None = None
        self.reduce_transition_decisions = False
        self._fts_setup_done = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Connect to the scheduler; check after validation (not at train epoch end) unless told otherwise."""
        if self._fts_setup_done:
            return
        self.finetuningscheduler_callback = find_scheduler(trainer, type(self))
        if self._check_on_train_epoch_end is None:
            self._check_on_train_epoch_end = False
        super().setup(trainer, pl_module, stage)
        self._fts_setup_done = True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Allow a later fit with the same callback to connect again."""
        self._fts_setup_done = False

    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if should_stop and self.stopping_reason is EarlyStoppingReason.PATIENCE_EXHAUSTED and not self.final_phase:
            self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
            self.es_phase_complete = True
            self.wait_count = 0
            return False, f"{self.monitor} stopped improving: this fine-tuning phase is complete"
        return should_stop, reason

    def _run_early_stopping_check(self, trainer: Trainer) -> None:
        super()._run_early_stopping_check(trainer)
        # Every process must enter the next phase together (their optimizers must stay identical), even when the
        # monitored metric is not synchronised: the phase is complete as soon as any process says so.
        self.es_phase_complete = bool(trainer.strategy.reduce_boolean_decision(self.es_phase_complete, all=False))

    def reset_phase(self) -> None:
        """Start watching a new phase (called by the scheduler when it enters one)."""
        self.es_phase_complete = False
        self.wait_count = 0

    def state_dict(self) -> dict[str, Any]:
        """Lightning's early-stopping state plus the phase signal, so a resumed fit decides as the original did.

        ``final_phase`` is not saved: it follows from the depth and the (possibly different) ``max_depth`` of the
        resumed fit, and the scheduler sets it.
        """
        return {**super().state_dict(), "es_phase_complete": self.es_phase_complete}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore Lightning's state and the phase signal."""
        super().load_state_dict(state_dict)
        self.es_phase_complete = bool(state_dict.get("es_phase_complete", False))


class FTSCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that also tracks the phase (depth) of the best checkpoint.

    ``current_ckpt_depth`` is the depth of the latest save, ``best_ckpt_depth`` the depth at which the current best
    checkpoint was saved (it moves only when the best checkpoint changes: equal scores keep the earlier one).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current_ckpt_depth = 0
        self.best_ckpt_depth = 0
        self.finetuningscheduler_callback: FinetuningScheduler | None = None
        self._best_before_save: str | None = None
        self._fts_setup_done = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Connect to the scheduler and check that ``restore_best`` has a best checkpoint to restore."""
        if self._fts_setup_done:
            return
        fts = find_scheduler(trainer, type(self))
        self.finetuningscheduler_callback = fts
        if fts.restore_best and not self.save_top_k:
            raise MisconfigurationException(
                f"FTSCheckpoint has save_top_k={self.save_top_k}, so there is no best checkpoint for restore_best "
                "to restore. Please set save_top_k to a non-zero value or set restore_best=False."
            )
        if fts.restore_best and self.monitor is None:
            raise MisconfigurationException(
                "FTSCheckpoint is configured for restore_best but has no quantity to monitor (monitor=None). "
                "Set `monitor` (e.g. monitor='val_loss') or set restore_best=False."
            )
        if self._save_on_train_epoch_end is None:
            self._save_on_train_epoch_end = False
        super().setup(trainer, pl_module, stage)
        self._fts_setup_done = True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Allow a later fit with the same callback to connect again."""
        self._fts_setup_done = False

    def _save_topk_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        self._best_before_save = self.best_model_path
        try:
            super()._save_topk_checkpoint(trainer, monitor_candidates)
        finally:
            self._best_before_save = None

    @property
    def saving_new_best(self) -> bool:
        """Whether the checkpoint being written right now has become the best one."""
        return self._best_before_save is not None and self.best_model_path != self._best_before_save

    def state_dict(self) -> dict[str, Any]:
        """Lightning's checkpoint-tracking state plus the depths of the latest and the best checkpoint."""
        fts = self.finetuningscheduler_callback
        if fts is not None:
            self.current_ckpt_depth = fts.curr_depth
            if self.saving_new_best:
                self.best_ckpt_depth = fts.curr_depth
        state = super().state_dict()
        return {**state, "current_ckpt_depth": self.current_ckpt_depth, "best_ckpt_depth": self.best_ckpt_depth}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the tracking state, including the top-k bookkeeping when the ``dirpath`` changed.

        Lightning forgets the best scores when resuming into another folder, which would let the first new save
        become "best" and make a resumed fit restore a different checkpoint than the uninterrupted one. The earlier
        checkpoints stay tracked (Lightning never deletes files outside its own ``dirpath``).
        """
        moved = state_dict.get("dirpath", self.dirpath) != self.dirpath
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The dirpath has changed")
            super().load_state_dict(state_dict)
        if moved:
            warnings.warn(
                f"The checkpoint dirpath changed from {state_dict.get('dirpath')!r} to {self.dirpath!r}: new "
                "checkpoints go to the new folder, and the earlier best checkpoints stay tracked (never deleted).",
                stacklevel=2,
            )
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
        self.current_ckpt_depth = int(state_dict.get("current_ckpt_depth", 0))
        self.best_ckpt_depth = int(state_dict.get("best_ckpt_depth", 0))


def is_fts_callback(callback: Callback) -> bool:
    """Whether a callback is one of the phase-aware callbacks of this package."""
    return isinstance(callback, FTSEarlyStopping | FTSCheckpoint)
