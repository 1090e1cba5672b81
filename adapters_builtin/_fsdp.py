"""The built-in adapter for Lightning's ``FSDPStrategy`` (FSDP1; flags ``fsdp`` and ``fsdp_cpu_offload``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.rank_zero import rank_zero_warn  # type: ignore[attr-defined]
from returns.pipeline import is_successful
from returns.result import Failure, Result
from torch import nn
from typing_extensions import override

from finetuning_scheduler.core import (
    Binding,
    BindingKind,
    Diagnostics,
    Location,
    NameMap,
    ResolvedSchedule,
    build_name_map,
    error,
    flat_parameter_conflicts,
    strip_wrappers,
    units_of,
)
from finetuning_scheduler.shell.lightning import ScheduleValidationError

from ._names import UnwrappedNamesStrategyAdapter
from ._sharding import predicted_fsdp_units

_FLAT = "_flat_param"


def _override_problems(module: nn.Module, overrides: Sequence[str]) -> tuple[list[str], Diagnostics]:
    """The modules that ``awp_overrides`` name (a name, or a regex matched with ``re.match``), or every problem."""
    names = [name for name, _ in module.named_modules() if name]
    chosen: list[str] = []
    problems: Diagnostics = ()
    for key in overrides:
        where = Location(None, "awp_overrides", subpath=(key,))
        try:
            pattern = re.compile(key)
        except re.error as exc:
            problems += (error("invalid-regex", f"awp_overrides entry {key!r} is not a valid regex: {exc}", where),)
            continue
        matched = [key] if key in names else [name for name in names if pattern.match(name)]
        if not matched:
            message = f"The module or regex {key!r} given in awp_overrides did not match any named module"
            problems += (error("awp-no-match", message, where, "use a name from model.named_modules()"),)
        chosen += [name for name in matched if name not in chosen]
    return chosen, problems


class FSDPStrategyAdapter(UnwrappedNamesStrategyAdapter):
    """FSDP1 through ``FSDPStrategy``: schedules use the unwrapped, logical names whatever the wrapping.

    - ``use_orig_params=True`` (Lightning's default): parameters of one FSDP unit may thaw in different phases.
    - ``use_orig_params=False``: each unit's parameters are one ``FlatParameter`` with one ``requires_grad``, so at
      setup a schedule that would split a unit across phases (or leave part of it unscheduled) is rejected, naming
      the unit, the phases and the fix. After wrapping, schedule names translate to the flat parameters.

    Args:
        awp_overrides: module names or regexes (``re.match``) to wrap as their own FSDP unit, in addition to the
            strategy's ``auto_wrap_policy`` (ignored, with a warning, when the module has its own
            ``configure_model``, which then decides the wrapping).
    """

    restores_optimizer_in_place = True  # FSDPStrategy.load_checkpoint reshards the full optimizer state itself

    def __init__(self, awp_overrides: Sequence[str] | None = None) -> None:
        if awp_overrides is not None and (
            isinstance(awp_overrides, str) or not all(isinstance(item, str) for item in awp_overrides)
        ):
            raise TypeError(f"awp_overrides must be a list of module names or regexes, got {awp_overrides!r}")
        super().__init__()
        self.awp_overrides: list[str] = list(awp_overrides or [])

    @property
    def use_orig_params(self) -> bool:
        """Whether FSDP keeps the original parameters (Lightning's default) rather than flat ones only."""
        return bool(getattr(self.pls_handle, "kwargs", {}).get("use_orig_params", True))

    def _policy(self) -> Any:
        return getattr(self.pls_handle, "kwargs", {}).get("auto_wrap_policy")

    # -- wrapping ------------------------------------------------------------------------------------------------

    @override
    def on_before_init_fts(self) -> None:
        """Defer a resume's optimizer state; add ``awp_overrides`` to the wrapping policy (all bad entries at once)."""
        self._defer_resumed_optimizer_state()
        module = self.pl_module
        if self.awp_overrides and is_overridden("configure_model", module, LightningModule):
            rank_zero_warn(
                "The LightningModule overrides configure_model, which then decides the FSDP wrapping: "
                f"awp_overrides {self.awp_overrides} are not applied."
            )
            self.awp_overrides = []
        if not self.awp_overrides:
            if self._policy() is None and not is_overridden("configure_model", module, LightningModule):
                rank_zero_warn(
                    "FSDPStrategy has no auto_wrap_policy: the whole model becomes one FSDP unit, which is often "
                    "(but not always) degenerate and unintended. Pass FSDPStrategy(auto_wrap_policy=...) or "
                    "awp_overrides."
                )
            return
        chosen, problems = _override_problems(module, self.awp_overrides)
        if problems:
            raise ScheduleValidationError(problems)
        self._extend_policy(module, chosen)

    def _extend_policy(self, module: nn.Module, overrides: list[str]) -> None:
        """One policy that wraps exactly the units the strategy's policy would, plus the overrides."""
        from torch.distributed.fsdp.wrap import CustomPolicy

        strategy: Any = self.pls_handle
        units = set(predicted_fsdp_units(module, self._policy())) | set(overrides)
        targets = {id(child) for name, child in module.named_modules() if name in units}
        strategy.kwargs["auto_wrap_policy"] = CustomPolicy(lambda child: id(child) in targets)

    def _defer_resumed_optimizer_state(self) -> None:
        """Lightning's FSDP loads a resumed checkpoint's optimizer state into the optimizer as it is at setup, with
        phase 0's groups only, which fails for a checkpoint of a later phase. Load the resume's weights only; the
        scheduler loads the checkpoint again once it has rebuilt the groups (``restores_optimizer_in_place``)."""
        strategy: Any = self.pls_handle
        original = vars(strategy).pop("load_checkpoint", None) or strategy.load_checkpoint
        resumed = False

        def load_checkpoint(path: Any, weights_only: bool | None = None) -> Any:
            nonlocal resumed
            trainer = self.trainer
            resuming = trainer.ckpt_path is not None and Path(path) == Path(trainer.ckpt_path)
            if resumed or not resuming or trainer.state.fn != TrainerFn.FITTING:
                return original(path, weights_only)
            resumed = True  # the resume's own load happens once; restore_best's later loads are left alone
            state = trainer.state
            state.fn = TrainerFn.VALIDATING  # Lightning's FSDP loads optimizer state only while fitting
            try:
                return original(path, weights_only)
            finally:
                state.fn = TrainerFn.FITTING

        strategy.load_checkpoint = load_checkpoint

    # -- schedules -----------------------------------------------------------------------------------------------

    @override
    def validate_ft_sched(self) -> Result[ResolvedSchedule, Diagnostics]:
        """Validate as usual; with ``use_orig_params=False`` also check that no phase splits a flat parameter."""
        resolved = super().validate_ft_sched()
        if self.use_orig_params or not is_successful(resolved) or self.translated is None:
            return resolved
        canonical = self.translated.canonical
        strategy: Any = self.pls_handle
        units = predicted_fsdp_units(self.pl_module, self._policy(), getattr(strategy, "mixed_precision_config", None))
        names = [name for name, _ in self.pl_module.named_parameters()]
        conflicts = flat_parameter_conflicts(
            units_of(names, units), [phase.names for phase in canonical.phases], canonical.unscheduled
        )
        return Failure(conflicts) if conflicts else resolved

    @override
    def build_name_map(self, module: nn.Module, canonical: tuple[str, ...]) -> Result[NameMap, Diagnostics]:
        """Unwrapped names; once FSDP has flattened a unit, each logical name is a part of its flat parameter."""
        flats = {name: param for name, param in module.named_parameters() if name.rpartition(".")[2] == _FLAT}
        if not flats:
            return super().build_name_map(module, canonical)
        bindings: list[Binding] = []
        for name in canonical:
            flat = flats.get(name)
            if flat is None:
                view = strip_wrappers(name, self.wrappers, self.leading_wrappers)
                bindings.append(Binding(view, kind=BindingKind.PREFIX, canonical=name))
                continue
            for part in getattr(flat, "_fqns", ()):
                # The parts are named relative to the unit holding the flat parameter (beside ``_flat_param``).
                view = strip_wrappers(
                    f"{name.rpartition('.')[0]}.{part}".lstrip("."), self.wrappers, self.leading_wrappers
                )
                bindings.append(Binding.of(view, name, BindingKind.FUSED))
        return build_name_map(canonical, bindings, passthrough=False)


__all__ = ["FSDPStrategyAdapter"]
