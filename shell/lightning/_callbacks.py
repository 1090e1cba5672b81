"""FTSEarlyStopping and FTSCheckpoint: Lightning's callbacks, taught that a fit has phases."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities.exceptions import MisconfigurationException  # type: ignore[attr-defined]
from lightning.pytorch.utilities.rank_zero import rank_zero_warn  # type: ignore[attr-defined]
from torch import Tensor
from typing_extensions import override

from ._fts_arguments import CHECKPOINT, EARLY_STOPPING, check_lightning_arguments
from ._views import SchedulerView, schedulers


def find_scheduler(trainer: Trainer, requester: type) -> SchedulerView:
    """The FinetuningScheduler among the trainer's callbacks (recognised by its attributes, as FTS does)."""
    found = schedulers(trainer)
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


PER_PROCESS_KEY = "per_process_states"
"""The checkpoint key under which a phase-aware callback keeps every process's state (a list, by rank)."""


def _on_cpu(value: Any) -> Any:
    """A state with its tensors moved to the CPU (so any rank, or a CPU-only resume, can load it)."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _on_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_on_cpu(item) for item in value)
    return value


def with_every_process(own: dict[str, Any], world: int = 1) -> dict[str, Any]:
    """This process's callback state, plus the list of every process's under :data:`PER_PROCESS_KEY`.

    A metric logged without ``sync_dist=True`` differs between processes, so does each process's early-stopping
    and top-k state. Lightning writes rank 0's checkpoint only, and a resumed process would otherwise start from
    rank 0's state and take other decisions than it did. Every process calls ``state_dict`` when a checkpoint is
    saved, so gathering here is safe. ``world`` is the fit's number of processes (the trainer's, not whatever
    process group happens to exist); with one the state is returned unchanged:

    >>> with_every_process({"wait_count": 1})
    {'wait_count': 1}
    """
    if world == 1 or not torch.distributed.is_initialized():
        return own
    gathered: list[Any] = [None] * world
    torch.distributed.all_gather_object(gathered, _on_cpu(own))
    return {**own, PER_PROCESS_KEY: gathered}


def own_process_state(state: dict[str, Any], rank: int = 0, world: int = 1) -> dict[str, Any]:
    """The state this process saved, when the checkpoint has one per process and the world size is unchanged;
    otherwise the checkpoint's top-level state (rank 0's).

    >>> own_process_state({"wait_count": 0, PER_PROCESS_KEY: [{"wait_count": 0}, {"wait_count": 2}]}, 1, 2)
    {'wait_count': 2}
    """
    per_process = state.get(PER_PROCESS_KEY)
    if isinstance(per_process, list) and len(per_process) == world and isinstance(per_process[rank], dict):
        return dict(per_process[rank])
    return {key: value for key, value in state.items() if key != PER_PROCESS_KEY}


class _ConnectsToScheduler(Callback):
    """The setup guard both phase-aware callbacks share: connect to the scheduler once per fit.

    The scheduler may set a twin up early (when it replaces a plain callback during its own ``setup``), and Lightning
    then calls ``setup`` again; the second call must change nothing. ``teardown`` allows the next fit to connect.
    """

    finetuningscheduler_callback: SchedulerView | None = None
    _fts_setup_done = False
    _rank, _world = 0, 1  # this process and the fit's number of processes, for per-process checkpoint state

    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._fts_setup_done:
            return
        self.finetuningscheduler_callback = find_scheduler(trainer, type(self))
        self._rank, self._world = trainer.global_rank, trainer.world_size
        self._connect(self.finetuningscheduler_callback)
        super().setup(trainer, pl_module, stage)
        self._fts_setup_done = True

    def _connect(self, fts: SchedulerView) -> None:
        """Check and adjust this callback's settings for the scheduler (before Lightning's own setup)."""

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._fts_setup_done = False
        self._rank, self._world = 0, 1
        super().teardown(trainer, pl_module, stage)


class FTSEarlyStopping(_ConnectsToScheduler, EarlyStopping):
    """Early stopping that ends a *phase* instead of the run, until the final phase.

    Takes Lightning's ``EarlyStopping`` arguments. When the monitored metric stops improving in a phase that is
    not the last, the phase is marked complete (``es_phase_complete``) and training goes on; the scheduler then
    enters the next phase at the start of the next epoch. Non-finite metrics and the stopping/divergence thresholds
    still stop the whole run. ``best_score`` carries over between phases, as in FTS.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_lightning_arguments("FTSEarlyStopping", EarlyStopping.__init__, args, kwargs, EARLY_STOPPING)
        super().__init__(*args, **kwargs)
        self.es_phase_complete = True
        self.final_phase = True
        self.reduce_transition_decisions = False

    @override
    def _connect(self, fts: SchedulerView) -> None:
        """Check after validation (not at train epoch end) unless told otherwise."""
        if self._check_on_train_epoch_end is None:
            self._check_on_train_epoch_end = False

    @override
    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        should_stop, reason = super()._evaluate_stopping_criteria(current)
        if should_stop and self.stopping_reason is EarlyStoppingReason.PATIENCE_EXHAUSTED and not self.final_phase:
            self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
            self.es_phase_complete = True
            self.wait_count = 0
            return False, f"{self.monitor} stopped improving: this fine-tuning phase is complete"
        return should_stop, reason

    @override
    def _run_early_stopping_check(self, trainer: Trainer) -> None:
        super()._run_early_stopping_check(trainer)
        if trainer.world_size > 1:
            self._warn_if_unsynchronised(trainer)
        # Every process must enter the next phase together (their optimizers must stay identical), even when the
        # monitored metric is not synchronised: the phase is complete as soon as any process says so.
        self.es_phase_complete = bool(trainer.strategy.reduce_boolean_decision(self.es_phase_complete, all=False))

    def _warn_if_unsynchronised(self, trainer: Trainer) -> None:
        """Say once when the processes see different values of the monitored metric (logged without
        ``sync_dist=True``): each process then judges convergence on its own shard of the validation data."""
        current = trainer.callback_metrics.get(self.monitor)
        if self._unsynchronised_warned or current is None:
            return
        value = current.detach().float().reshape(())
        # Each reduction works in place on its tensor: reduce two copies.
        highest = trainer.strategy.reduce(value.clone(), reduce_op="max")
        lowest = trainer.strategy.reduce(value.clone(), reduce_op="min")
        if float(highest - lowest) > 0:
            self._unsynchronised_warned = True
            rank_zero_warn(
                f"FTSEarlyStopping monitors {self.monitor!r}, whose value differs between processes: log it with "
                "`sync_dist=True`. Phases still end together (a phase ends as soon as any process sees it converge), "
                "and checkpoints keep every process's early-stopping and top-k state, but each process judges "
                "convergence and the best checkpoint on its own shard of the validation data."
            )

    _unsynchronised_warned = False

    def reset_phase(self) -> None:
        """Start watching a new phase (called by the scheduler when it enters one)."""
        self.es_phase_complete = False
        self.wait_count = 0

    @override
    def state_dict(self) -> dict[str, Any]:
        """Lightning's early-stopping state plus the phase signal, so a resumed fit decides as the original did.

        ``final_phase`` is not saved: it follows from the depth and the (possibly different) ``max_depth`` of the
        resumed fit, and the scheduler sets it.
        """
        own = {**super().state_dict(), "es_phase_complete": self.es_phase_complete}
        return with_every_process(own, self._world)

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore Lightning's state and the phase signal (this process's own, where the checkpoint has it)."""
        state_dict = own_process_state(state_dict, self._rank, self._world)
        super().load_state_dict(state_dict)
        self.es_phase_complete = bool(state_dict.get("es_phase_complete", False))


class FTSCheckpoint(_ConnectsToScheduler, ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` that also tracks the phase (depth) of the best checkpoint.

    ``current_ckpt_depth`` is the depth of the latest save, ``best_ckpt_depth`` the depth at which the current best
    checkpoint was saved (it moves only when the best checkpoint changes: equal scores keep the earlier one).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_lightning_arguments("FTSCheckpoint", ModelCheckpoint.__init__, args, kwargs, CHECKPOINT)
        super().__init__(*args, **kwargs)
        self.current_ckpt_depth = 0
        self.best_ckpt_depth = 0
        self._best_before_save: str | None = None

    @override
    def _connect(self, fts: SchedulerView) -> None:
        """Check that ``restore_best`` has a best checkpoint to restore; save after validation unless told not to."""
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

    @override
    def _save_topk_checkpoint(self, trainer: Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        self._best_before_save = self.best_model_path
        try:
            super()._save_topk_checkpoint(trainer, monitor_candidates)
        finally:
            self._best_before_save = None

    @override
    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        # Every process calls this together. With a metric logged per process (no sync_dist) each would judge its
        # own best checkpoint, and restore_best would load different files on different processes: rank 0's
        # judgement holds for all of them.
        if trainer.world_size > 1:
            self.best_model_path = trainer.strategy.broadcast(self.best_model_path)
        super()._save_checkpoint(trainer, filepath)

    @property
    def saving_new_best(self) -> bool:
        """Whether the checkpoint being written right now has become the best one."""
        return self._best_before_save is not None and self.best_model_path != self._best_before_save

    @override
    def state_dict(self) -> dict[str, Any]:
        """Lightning's checkpoint-tracking state plus the depths of the latest and the best checkpoint."""
        fts = self.finetuningscheduler_callback
        if fts is not None:
            self.current_ckpt_depth = fts.curr_depth
            if self.saving_new_best:
                self.best_ckpt_depth = fts.curr_depth
        state = super().state_dict()
        depths = {"current_ckpt_depth": self.current_ckpt_depth, "best_ckpt_depth": self.best_ckpt_depth}
        return with_every_process({**state, **depths}, self._world)

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the tracking state, including the top-k bookkeeping when the ``dirpath`` changed.

        Lightning forgets the best scores when resuming into another folder, which would let the first new save
        become "best" and make a resumed fit restore a different checkpoint than the uninterrupted one. The earlier
        checkpoints stay tracked (Lightning never deletes files outside its own ``dirpath``).

        Like Lightning's own loading, a partial state keeps the current value of whatever it lacks (a state saved
        before a key existed, or written by hand) instead of failing on the missing key.
        """
        state_dict = own_process_state(state_dict, self._rank, self._world)
        moved = state_dict.get("dirpath", self.dirpath) != self.dirpath
        complete = {"best_model_score": self.best_model_score, "best_model_path": self.best_model_path, **state_dict}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The dirpath has changed")
            super().load_state_dict(complete)
        if moved:
            warnings.warn(
                f"The checkpoint dirpath changed from {state_dict.get('dirpath')!r} to {self.dirpath!r}: new "
                "checkpoints go to the new folder, and the earlier best checkpoints stay tracked (never deleted).",
                stacklevel=2,
            )
            self.best_model_score = complete["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
        self.current_ckpt_depth = int(state_dict.get("current_ckpt_depth", self.current_ckpt_depth))
        self.best_ckpt_depth = int(state_dict.get("best_ckpt_depth", self.best_ckpt_depth))


def is_fts_callback(callback: Callback) -> bool:
    """Whether a callback is one of the phase-aware callbacks of this package."""
    return isinstance(callback, FTSEarlyStopping | FTSCheckpoint)
