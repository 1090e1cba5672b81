"""Phased fine-tuning in the Hugging Face ``transformers.Trainer``: a ``TrainerCallback`` around the driver.

Importing this module needs ``transformers`` (``pip install -e '.[hf]'``); the package facade
never imports it. No Lightning import here either.

    callback = FinetuningCallback(model, "schedule.yaml")     # freezes the model and thaws phase 0 now
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
    trainer.train()                                            # phases begin at epoch starts

Create the callback before ``trainer.train()``: the Trainer builds its optimizer lazily in ``train()`` from the
parameters that require gradients, so freezing first gives it exactly phase 0. At each epoch start the callback
asks the core whether a new phase begins, thaws it and adds its parameter groups (``phase{d}`` and
``phase{d}/no_decay``, split as the Trainer's own optimizer splits weight decay) to the Trainer's optimizer,
extending the LR scheduler's per-group state.

Phases end by ``max_transition_epoch``, or, with ``monitor`` set (and ``eval_strategy="epoch"``), when the monitored
metric stops improving for ``patience`` evaluations; in the final phase that stops training.

Resuming with ``trainer.train(resume_from_checkpoint=...)`` is not supported: the Trainer loads the optimizer's
state before any callback runs, so the phase groups cannot be rebuilt first. The callback refuses a resumed run
with a clear error rather than continue with the wrong groups.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import attrs
from torch import nn
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from typing_extensions import override

from finetuning_scheduler.core import Diagnostic

from ..engine import ScheduleError
from .driver import EpochTrace, PhasePlateau, ScheduleDriver, ScheduleSource


def decay_parameter_names(model: nn.Module) -> frozenset[str]:
    """The parameters the Trainer's default optimizer applies weight decay to (the same rule, from transformers)."""
    # get_decay_parameter_names reads only its `model` argument (transformers 4.40 to 5.x); call it unbound so the
    # split follows the installed version's rule exactly.
    return frozenset(Trainer.get_decay_parameter_names(cast(Trainer, None), model))


_NO_MONITOR_HINT = (
    "give every phase a max_transition_epoch, or pass FinetuningCallback(monitor='eval_loss') (any metric the "
    "Trainer evaluates) so that a plateau ends a phase"
)


def _in_callback_terms(diagnostic: Diagnostic) -> Diagnostic:
    """The driver's hint names its own option (epoch_transitions_only), which a user of this callback never set."""
    if diagnostic.code != "missing-max-transition-epoch":
        return diagnostic
    message = "FinetuningCallback has no monitor, so only a max_transition_epoch can end this phase, and it has none"
    return attrs.evolve(diagnostic, message=message, hint=_NO_MONITOR_HINT)


class FinetuningCallback(TrainerCallback):
    """Fine-tune a ``transformers`` model in phases inside ``Trainer.train()``.

    Args:
        model: the model given to the Trainer (frozen, then phase 0 thawed, when the callback is created).
        schedule: a YAML path, a dict in the FTS format, a ``Schedule``, or ``None`` to generate one.
        monitor: an evaluation metric (``eval_loss`` or ``loss``) whose plateau ends a phase; ``None``: epochs only.
        patience: evaluations without improvement before a phase counts as converged.
        min_delta: the least change that counts as an improvement.
        greater_is_better: whether a larger ``monitor`` is better.
        on_trace: called with each epoch's :class:`EpochTrace` (log it, print it).
        driver_options: more keyword arguments for :class:`ScheduleDriver` (``max_depth``, ``base_max_lr``,
            ``epoch_transitions_only``, ``generation``, ``no_decay``, ``weight_decay``, ``apply_lambdas``...). By
            default new groups follow the Trainer's weight-decay split and ``args.weight_decay``, and their lr is
            scaled by the LR scheduler's current factor (the Trainer's schedulers step every optimizer step).
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: ScheduleSource = None,
        *,
        monitor: str | None = None,
        patience: int = 2,
        min_delta: float = 0.0,
        greater_is_better: bool = False,
        on_trace: Callable[[EpochTrace], None] | None = None,
        **driver_options: Any,
    ) -> None:
        driver_options.setdefault("apply_lambdas", True)
        # The Trainer steps the optimizer it built itself: a phase cannot hand it a new one, so such blocks are errors.
        driver_options["reinit"] = False
        epochs_only_chosen = "epoch_transitions_only" in driver_options
        driver_options.setdefault("epoch_transitions_only", monitor is None)
        self._custom_no_decay = "no_decay" in driver_options
        self._custom_weight_decay = "weight_decay" in driver_options
        try:
            self.driver = ScheduleDriver(model, schedule, **driver_options)
        except ScheduleError as problem:
            if monitor is not None or epochs_only_chosen:
                raise
            raise ScheduleError(tuple(_in_callback_terms(d) for d in problem.diagnostics)) from None
        self.monitor = monitor
        self.plateau = PhasePlateau(patience, min_delta, "max" if greater_is_better else "min")
        self.on_trace = on_trace
        self.traces: list[EpochTrace] = []

    @override
    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Take the optimizer the Trainer built from phase 0 (and its LR scheduler)."""
        if state.global_step > 0:
            raise NotImplementedError(
                "FinetuningCallback cannot resume a Trainer run (resume_from_checkpoint): the Trainer restores the "
                "optimizer before callbacks run, so the phase groups cannot be rebuilt. Start a new run."
            )
        if not self._custom_no_decay:
            decay = decay_parameter_names(self.driver.module)
            self.driver.no_decay = lambda name: name not in decay
        if not self._custom_weight_decay:
            self.driver.weight_decay = args.weight_decay
        scheduler = kwargs.get("lr_scheduler")
        self.driver.attach(kwargs["optimizer"], [] if scheduler is None else [scheduler])

    @override
    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Enter the next phase when the core says so."""
        epoch = math.floor((state.epoch or 0.0) + 1e-6)  # state.epoch is fractional: epoch + steps done / steps
        converged = None if self.monitor is None else self.plateau.converged  # None: no signal (epochs only)
        trace = self.driver.epoch_start(epoch, phase_converged=converged)
        if trace.reason is not None:
            self.plateau.reset()
        self.traces.append(trace)
        if self.on_trace is not None:
            self.on_trace(trace)

    @override
    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Feed the monitored metric to the plateau; a converged final phase stops training."""
        metrics = kwargs.get("metrics") or {}
        if self.monitor is None:
            return
        value = metrics.get(self.monitor, metrics.get(f"eval_{self.monitor}"))
        if value is None:
            raise KeyError(f"FinetuningCallback monitors {self.monitor!r}, not among the metrics {sorted(metrics)}")
        if self.plateau.update(float(value)) and self.driver.in_final_phase:
            control.should_training_stop = True


__all__ = ["FinetuningCallback", "decay_parameter_names"]
