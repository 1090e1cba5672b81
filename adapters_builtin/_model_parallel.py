"""The built-in adapter for Lightning's ``ModelParallelStrategy`` (FSDP2 ``fully_shard``, optionally with TP)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn  # type: ignore[attr-defined]
from returns.pipeline import is_successful
from torch import nn
from typing_extensions import override

from finetuning_scheduler.core import Diagnostics, ShardingPlan, plan_sharding
from finetuning_scheduler.shell.lightning import PATCHED_BY_SCHEDULER, ScheduleValidationError, unpatch

from ._names import UnwrappedNamesStrategyAdapter
from ._sharding import activation_checkpoint_mode, apply_activation_checkpointing, module_names, tie_problems

_OWN_CONFIGURE_MODEL = "__fts_own_configure_model__"
"""Where the installed ``configure_model`` keeps the module's own (not ``__wrapped__``: Lightning would then take a
module without a ``configure_model`` of its own for one that has none, and ModelParallelStrategy refuses those)."""


def _mapping_argument(name: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (module name or regex -> fully_shard kwargs), got {value!r}")
    return dict(value)


def _warn_all(notes: Diagnostics) -> None:
    for note in notes:
        rank_zero_warn(note.render())


class ModelParallelStrategyAdapter(UnwrappedNamesStrategyAdapter):
    """FSDP2 (and tensor parallel) through ``ModelParallelStrategy``.

    Schedules use the unwrapped names (no ``_checkpoint_wrapped_module.``). The model is sharded by its own
    ``configure_model``, by an ``fsdp_plan``, or both (the plan is applied after the user's ``configure_model``,
    and skips modules that are already sharded, with a warning).

    Args:
        fsdp_default_kwargs: ``fully_shard`` keyword arguments for every module of the plan.
        fsdp_plan: module name or regex (``re.match``) -> ``fully_shard`` keyword arguments, merged over the
            defaults. Two aliases are understood: ``act_ckpt: [mode]`` or ``[mode, cfg]`` checkpoints the module's
            activations first (``composable``, ``wrapped`` or ``wrapped_offload``), and ``cpu_offload_policy: {...}``
            becomes ``offload_policy=CPUOffloadPolicy(...)``. Modules are sharded children first, whatever the
            plan's order. A key matching no module, an invalid regex, or a plan that would shard two tied
            parameters in different units is an error at setup.

    At fit start, a phase that mixes sharded (DTensor) and unsharded parameters is reported (info): its param group
    then mixes both kinds, which some optimizers' fused paths reject.
    """

    def __init__(
        self, fsdp_default_kwargs: Mapping[str, Any] | None = None, fsdp_plan: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.fsdp_default_kwargs = _mapping_argument("fsdp_default_kwargs", fsdp_default_kwargs)
        self.fsdp_plan = _mapping_argument("fsdp_plan", fsdp_plan)
        self.sharding: ShardingPlan | None = None

    # -- the plan ------------------------------------------------------------------------------------------------

    @override
    def on_before_init_fts(self) -> None:
        """Resolve the ``fsdp_plan`` against the model (every problem at once) and install it in ``configure_model``."""
        if not self.fsdp_plan:
            return
        names, containers = module_names(self.pl_module)
        resolved = plan_sharding(self.fsdp_plan, self.fsdp_default_kwargs, names, containers)
        if not is_successful(resolved):
            raise ScheduleValidationError(resolved.failure())
        plan = resolved.unwrap()
        _warn_all(plan.notes)
        ties = tie_problems(self.pl_module, plan.modules)
        if ties:
            raise ScheduleValidationError(ties)
        self.sharding = plan
        self._install_configure_model()

    def _install_configure_model(self) -> None:
        """``configure_model`` becomes: the module's own (if any), then the plan. Installed once per module."""
        module = self.pl_module
        installed = module.__dict__.get("configure_model")
        own: Callable[[], None] = getattr(installed, _OWN_CONFIGURE_MODEL, None) or module.configure_model

        def configure_model() -> None:
            own()
            self.apply_plan()

        setattr(configure_model, _OWN_CONFIGURE_MODEL, own)
        setattr(configure_model, PATCHED_BY_SCHEDULER, True)
        module.configure_model = configure_model  # type: ignore[method-assign]

    @override
    def on_fit_teardown(self) -> None:
        """Give the module back its own ``configure_model`` (a later ``validate`` or fit must not apply this plan)."""
        unpatch(self.pl_module, "configure_model")

    def apply_plan(self) -> None:
        """``fully_shard`` each module of the plan over the data-parallel mesh (after its activation checkpointing)."""
        from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, fully_shard

        if self.sharding is None:
            return
        mesh = self.pls_handle.device_mesh["data_parallel"]  # type: ignore[attr-defined]
        for directive in self.sharding.directives:
            target = self.pl_module.get_submodule(directive.module)
            if isinstance(target, FSDPModule):
                rank_zero_warn(
                    f"{directive.module!r} has already registered the fully_shard composable API (configure_model "
                    f"sharded it): the fsdp_plan entry {directive.key!r} is not applied to it."
                )
                continue
            kwargs = dict(directive.kwargs)
            checkpointing = kwargs.pop("act_ckpt", None)
            offload = kwargs.pop("cpu_offload_policy", None)
            if offload is not None:
                kwargs["offload_policy"] = CPUOffloadPolicy(**dict(offload))
            if checkpointing is not None:
                mode, options, notes = activation_checkpoint_mode(checkpointing, directive.key)
                _warn_all(notes)
                target = apply_activation_checkpointing(self.pl_module, directive.module, mode, options)
            fully_shard(target, mesh=mesh, **kwargs)

    # -- fit start -----------------------------------------------------------------------------------------------

    @override
    def on_before_fts_fit_start(self) -> None:
        """Check the sharding the fit will train with: tied parameters kept in one unit; mixed phases reported."""
        from torch.distributed.fsdp import FSDPModule

        units = [name for name, module in self.pl_module.named_modules() if isinstance(module, FSDPModule)]
        ties = tie_problems(self.pl_module, units)
        if ties:
            raise ScheduleValidationError(ties)
        self._report_mixed_phases()

    def _report_mixed_phases(self) -> None:
        from torch.distributed.tensor import DTensor

        params: dict[str, nn.Parameter] = dict(self.pl_module.named_parameters())
        for depth, phase in sorted(dict(self.fts_handle.ft_schedule or {}).items()):
            names = [name for name in self.fts_optim_transform(list(phase.get("params", []))) if name in params]
            sharded = [name for name in names if isinstance(params[name], DTensor)]
            if sharded and len(sharded) < len(names):
                plain = sorted(set(names) - set(sharded))
                rank_zero_info(
                    f"Phase {depth} would produce a param group mixing DTensor and non-DTensor parameters "
                    f"(not sharded: {', '.join(plain[:5])}{' ...' if len(plain) > 5 else ''}). HINT: add the modules "
                    "holding them (or the root model) to the fsdp_plan or shard them in configure_model."
                )


__all__ = ["ModelParallelStrategyAdapter"]
