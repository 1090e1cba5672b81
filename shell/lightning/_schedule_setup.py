"""The schedule part of the callback's ``setup``: read or generate it, validate it through the strategy adapter,
save it for reproducibility, extend ``max_epochs`` and check the adapter's name translation. Rank zero writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from lightning.pytorch.utilities.exceptions import MisconfigurationException  # type: ignore[attr-defined]
from lightning.pytorch.utilities.rank_zero import rank_zero_warn  # type: ignore[attr-defined]
from returns.pipeline import is_successful

from finetuning_scheduler.core import (
    Diagnostics,
    ImplicitReinit,
    RawSchedule,
    ResolvedSchedule,
    dump_schedule,
    effective_max_epochs,
    errors_only,
    warnings_only,
)

from ..engine import (
    param_index,
    raw_reinit_problems,
    read_schedule,
    reinit_problems,
    schedule_file_name,
    value_or_raise,
    write_schedule,
    write_text_atomically,
)
from ._errors import ScheduleValidationError
from ._naming import NameMapAdapterMixin
from ._strategy_adapter import StrategyAdapter
from ._views import SchedulerView


class ScheduleSetup:
    """Loads, validates and saves the schedule of ``fts`` through its strategy ``adapter``; ``info`` logs."""

    def __init__(self, fts: SchedulerView, adapter: StrategyAdapter, info: Callable[[str], None]) -> None:
        self.fts, self.adapter, self.info = fts, adapter, info

    def generate_and_exit(self) -> NoReturn:
        """``gen_ft_sched_only``: write the default schedule to ``log_dir`` (rank zero) and end the process."""
        log_dir = self.fts.log_dir  # a collective (trainer.log_dir broadcasts): every rank must ask
        if self.fts.trainer.is_global_zero:
            path = self.adapter.gen_ft_schedule(log_dir)
            self.info(f"Generated the default fine-tuning schedule '{path}'.")
        raise SystemExit(0)

    def load_and_validate(self, implicit: ImplicitReinit) -> ResolvedSchedule:
        """The resolved schedule; every problem at once as one :class:`ScheduleValidationError` (the classes of its
        reinitialisation blocks, and the implicit ones, imported and tried as well)."""
        self.fts.raw_schedule = self._raw_schedule()
        fts = self.fts
        resolved, found = checked_schedule(
            self.adapter, fts.raw_schedule, implicit, fts.allow_untested, fts.allowed_class_prefixes
        )
        if resolved is None:  # every problem, the warnings found with the errors too
            raise ScheduleValidationError(found)
        if errors_only(found):
            raise ScheduleValidationError(errors_only(found))
        for diagnostic in warnings_only(found):
            rank_zero_warn(diagnostic.render())
        self._save(resolved)
        return resolved

    def _raw_schedule(self) -> RawSchedule | Mapping[Any, Any]:
        given = self.fts.ft_schedule
        if isinstance(given, Mapping) and given:
            return given
        if given:
            path: str | os.PathLike[str] = given
        else:
            if self.fts.max_depth == -1:
                self.info("No fine-tuning schedule given and max_depth is -1: thawing the whole model, phase by phase.")
            generated = self._generated_schedule()
            if generated is not None:
                return generated
            path = self._generated_schedule_path()
        return value_or_raise(read_schedule(path), ScheduleValidationError)

    def _generated_schedule(self) -> RawSchedule | None:
        """The implicit schedule in memory on every process (generation is deterministic), written by rank zero for
        the user; ``None`` for an adapter with its own ``gen_ft_schedule`` (FTS's API: it writes a file, which is
        then read)."""
        if type(self.adapter).gen_ft_schedule not in _BUILT_IN_GENERATORS:
            return None
        schedule = self.adapter.default_schedule()
        log_dir = self.fts.log_dir  # a collective (trainer.log_dir broadcasts): every rank must ask
        target = self._target(log_dir)
        raw = RawSchedule.of(schedule, str(target))
        if self.fts.trainer.is_global_zero:
            write_text_atomically(target, dump_schedule(schedule))
            self.info(f"Generated the default fine-tuning schedule '{target}'.")
        return raw

    def _target(self, log_dir: str) -> Path:
        return Path(log_dir) / schedule_file_name(self.fts.pl_module)

    def _generated_schedule_path(self) -> Path:
        log_dir = self.fts.log_dir  # a collective (trainer.log_dir broadcasts): every rank must ask
        target = self._target(log_dir)
        if self.fts.trainer.is_global_zero:
            target = self.adapter.gen_ft_schedule(log_dir)
            self.info(f"Generated the default fine-tuning schedule '{target}'.")
        self.fts.trainer.strategy.barrier("fts_generated_schedule")
        return target

    def _save(self, resolved: ResolvedSchedule) -> None:
        log_dir = self.fts.log_dir  # a collective (trainer.log_dir broadcasts): every rank must ask
        if self.fts.ft_schedule and self.fts.trainer.is_global_zero:
            target = write_schedule(resolved.schedule, self._target(log_dir))
            self.info(f"Fine-tuning schedule saved to {target} for reproducibility.")

    def extend_max_epochs(self, resolved: ResolvedSchedule) -> None:
        """FTS rule: a ``max_transition_epoch`` on the final phase extends ``max_epochs`` (said in a warning)."""
        fit_loop = self.fts.trainer.fit_loop
        max_epochs = fit_loop.max_epochs
        if max_epochs is None or max_epochs < 0:
            return
        extended = effective_max_epochs(resolved, max_epochs)
        final = resolved.phases[-1].max_transition_epoch
        if extended != max_epochs or final >= 0:
            rank_zero_warn(
                f"The final phase has max_transition_epoch {final}: max_epochs becomes the greater of max_epochs "
                f"({max_epochs}) and the largest phase epoch ({resolved.epoch_watermark}), i.e. {extended}."
            )
            fit_loop.max_epochs = extended

    def check_translations(self, resolved: ResolvedSchedule) -> None:
        """Every name the adapter translates a phase to must be one of the module's parameters: say which are not.

        With the base adapter's names and transform (the module's own names, unchanged) validation has already
        matched every name to the module, so there is nothing to check."""
        if not _overrides(self.adapter, _NAMING_HOOKS):
            return
        known = param_index(self.fts.pl_module).named
        unknown = {
            depth: missing
            for depth, phase in enumerate(resolved.phases)
            if (missing := [n for n in self.adapter.fts_optim_transform(list(phase.names)) if n not in known])
        }
        if unknown:
            listed = "; ".join(f"phase {depth}: {names[:5]}" for depth, names in unknown.items())
            raise MisconfigurationException(
                f"The strategy adapter {type(self.adapter).__name__} translated schedule names to parameters "
                f"the module does not have ({listed}). Check its fts_optim_transform (schedule names to module names)."
            )


_NAMING_HOOKS = (
    "fts_optim_transform",
    "validate_ft_sched",
    "schedule_inventory",
    "get_named_params_for_schedule_validation",
)


def _overrides(adapter: StrategyAdapter, hooks: tuple[str, ...]) -> bool:
    return any(getattr(type(adapter), hook) is not getattr(StrategyAdapter, hook) for hook in hooks)


_BUILT_IN_GENERATORS = (StrategyAdapter.gen_ft_schedule, NameMapAdapterMixin.gen_ft_schedule)


def checked_schedule(
    adapter: StrategyAdapter,
    raw: RawSchedule | Mapping[Any, Any],
    implicit: ImplicitReinit,
    allow_untested: bool,
    allowed_prefixes: Sequence[str] | None = None,
) -> tuple[ResolvedSchedule | None, Diagnostics]:
    """Validate a schedule through the adapter (its ``fts_handle`` supplies the model and options), the classes of
    its reinitialisation blocks imported and tried too: the resolved schedule (``None`` when invalid) and every
    diagnostic, errors and warnings, in the order found. Used by the callback's setup and by ``validate``. A class
    outside ``allowed_prefixes`` (when given) is an error and is never imported."""
    outcome = adapter.validate_ft_sched()
    if not is_successful(outcome):  # the reinitialisation classes are reported with the other errors
        found = raw_reinit_problems(raw, implicit, allow_untested, allowed_prefixes=allowed_prefixes)
        return None, outcome.failure() + errors_only(found)
    resolved = outcome.unwrap()
    return resolved, reinit_problems(resolved, implicit, allow_untested, allowed_prefixes=allowed_prefixes) + (
        resolved.warnings
    )


__all__ = ["ScheduleSetup", "checked_schedule"]
