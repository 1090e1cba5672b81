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
from finetuning_scheduler.shell.lightning import (
    PATCHED_BY_SCHEDULER,
    ScheduleValidationError,
    optimizer_state_left_out,
    unpatch,
)

from ._names import UnwrappedNamesStrategyAdapter
from ._sharding import predicted_fsdp_units

_FLAT = "_flat_param"
_USER_POLICY = "__fts_user_auto_wrap_policy__"
"""Where the policy this adapter installs keeps the user's, so that a later fit predicts from the user's policy."""


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
        self._user_policy: Any = None
        self._policy_replaced = False

    def _strategy_kwargs(self) -> dict[str, Any]:
        """The FSDP strategy's keyword arguments; none when a schedule is checked without a Trainer (``validate``)."""
        if getattr(self.fts_handle, "trainer", None) is None:
            return {}
        return dict(getattr(self.pls_handle, "kwargs", {}))

    @property
    def use_orig_params(self) -> bool:
        """Whether FSDP keeps the original parameters (Lightning's default) rather than flat ones only."""
        return bool(self._strategy_kwargs().get("use_orig_params", True))

    def _policy(self) -> Any:
        """The user's wrapping policy (never the one this adapter put in its place)."""
        policy = self._strategy_kwargs().get("auto_wrap_policy")
        return getattr(policy, _USER_POLICY, policy)

    def _own_configure_model(self) -> bool:
        return is_overridden("configure_model", self.pl_module, LightningModule)

    # -- wrapping ------------------------------------------------------------------------------------------------

    @override
    def on_before_init_fts(self) -> None:
        """Defer a resume's optimizer state; add ``awp_overrides`` to the wrapping policy (all bad entries at once)."""
        self._defer_resumed_optimizer_state()
        self._keep_flat_optimizer_state_names()
        module = self.pl_module
        if self.awp_overrides and self._own_configure_model():
            rank_zero_warn(
                "The LightningModule overrides configure_model, which then decides the FSDP wrapping: "
                f"awp_overrides {self.awp_overrides} are not applied."
            )
            self.awp_overrides = []
        if not self.awp_overrides:
            if self._policy() is None and not self._own_configure_model():
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
        """One policy that wraps exactly the units the user's policy would, plus the overrides (the user's policy
        comes back at teardown)."""
        from torch.distributed.fsdp.wrap import CustomPolicy

        strategy: Any = self.pls_handle
        user_policy = self._policy()
        units = set(predicted_fsdp_units(module, user_policy)) | set(overrides)
        targets = [child for name, child in module.named_modules() if name in units]
        wrapped = {id(child): child for child in targets}  # holding the modules keeps their ids theirs
        policy = CustomPolicy(lambda child: wrapped.get(id(child)) is child)
        setattr(policy, _USER_POLICY, user_policy)
        self._user_policy, self._policy_replaced = user_policy, True
        strategy.kwargs["auto_wrap_policy"] = policy

    def _defer_resumed_optimizer_state(self) -> None:
        """Lightning's FSDP loads a resumed checkpoint's optimizer state into the optimizer as it is at setup, with
        phase 0's groups only, which fails for a checkpoint of a later phase. Load the resume's weights only; the
        scheduler loads the checkpoint again once it has rebuilt the groups (``restores_optimizer_in_place``)."""
        strategy: Any = self.pls_handle
        unpatch(strategy, "load_checkpoint")  # a fit that ended by an exception may have left its patch behind
        original = strategy.load_checkpoint
        resumed = False

        def load_checkpoint(path: Any, weights_only: bool | None = None) -> Any:
            nonlocal resumed
            trainer = self.trainer
            resuming = trainer.ckpt_path is not None and Path(path) == Path(trainer.ckpt_path)
            if resumed or not resuming or trainer.state.fn != TrainerFn.FITTING:
                return original(path, weights_only)
            resumed = True  # the resume's own load happens once; restore_best's later loads are left alone
            with optimizer_state_left_out(trainer):
                return original(path, weights_only)

        setattr(load_checkpoint, PATCHED_BY_SCHEDULER, True)
        strategy.load_checkpoint = load_checkpoint

    def _keep_flat_optimizer_state_names(self) -> None:
        """With flat parameters, Lightning's full optimizer state fails to save: it re-keys the state by parameter
        index, and a flat parameter has several names. Keep FSDP's own (logical-name) keys, which Lightning's
        loading accepts."""
        strategy: Any = self.pls_handle
        unpatch(strategy, "optimizer_state")
        if self.use_orig_params or getattr(strategy, "_state_dict_type", "full") != "full":
            return

        def optimizer_state(optimizer: Any) -> dict[str, Any]:
            from torch.distributed.fsdp import FullOptimStateDictConfig, FullStateDictConfig, StateDictType
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP  # noqa: N817

            # Offloading to the CPU on a CPU device would skip the copy of the gathered state (torch relies on it).
            offload = strategy.root_device.type != "cpu"
            context = FSDP.state_dict_type(
                strategy.model,
                StateDictType.FULL_STATE_DICT,
                FullStateDictConfig(offload_to_cpu=offload, rank0_only=True),
                FullOptimStateDictConfig(offload_to_cpu=offload, rank0_only=True),
            )
            with context:
                return dict(FSDP.optim_state_dict(strategy.model, getattr(optimizer, "_optimizer", optimizer)))

        setattr(optimizer_state, PATCHED_BY_SCHEDULER, True)
        strategy.optimizer_state = optimizer_state

    @override
    def on_fit_teardown(self) -> None:
        """Give the strategy back its own checkpoint loading and saving, and the user's wrapping policy."""
        strategy: Any = self.pls_handle
        unpatch(strategy, "load_checkpoint")
        unpatch(strategy, "optimizer_state")
        if self._policy_replaced:
            strategy.kwargs["auto_wrap_policy"] = self._user_policy
            if self._user_policy is None:
                del strategy.kwargs["auto_wrap_policy"]
            self._user_policy, self._policy_replaced = None, False

    # -- schedules -----------------------------------------------------------------------------------------------

    @override
    def validate_ft_sched(self) -> Result[ResolvedSchedule, Diagnostics]:
        """Validate as usual; with ``use_orig_params=False`` also check that no phase splits a flat parameter."""
        resolved = super().validate_ft_sched()
        # A module's own configure_model decides its wrapping: the policy cannot predict the units then (FSDP
        # itself refuses a unit with mixed requires_grad when it wraps).
        if self.use_orig_params or self._own_configure_model() or not is_successful(resolved):
            return resolved
        if self.translated is None:
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
