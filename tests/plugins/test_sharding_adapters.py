"""The FSDP adapters' torch-side helpers, on one process: unit prediction and undoing what a fit changed."""

from __future__ import annotations

import functools

from torch import nn
from torch.distributed.fsdp import MixedPrecision
from torch.distributed.fsdp.wrap import ModuleWrapPolicy, size_based_auto_wrap_policy

from finetuning_scheduler.adapters_builtin import ModelParallelStrategyAdapter
from finetuning_scheduler.adapters_builtin._sharding import predicted_fsdp_units, tie_problems


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.Sequential(nn.Linear(16, 4), nn.Linear(4, 2)))


def test_units_are_predicted_for_class_and_callable_policies_and_mixed_precision() -> None:
    assert predicted_fsdp_units(_model(), ModuleWrapPolicy({nn.Linear})) == ["0", "2.0", "2.1"]
    by_size = functools.partial(size_based_auto_wrap_policy, min_num_params=100)
    assert predicted_fsdp_units(_model(), by_size) == ["0"]  # 272 elements; the nested block (78) stays in the root
    half = MixedPrecision()
    assert predicted_fsdp_units(_model(), ModuleWrapPolicy({nn.Linear}), half) == ["0", "1", "2.0", "2.1"]
    assert predicted_fsdp_units(_model(), None, half) == []  # without a policy FSDP wraps nothing on its own


def test_a_module_registered_under_two_names_is_one_unit_for_the_tie_check() -> None:
    model = nn.Module()
    model.a = model.b = nn.Linear(2, 2, bias=False)
    model.head = nn.Linear(2, 2, bias=False)
    model.head.weight = model.a.weight
    assert tie_problems(model, ["a"])[0].code == "fsdp-split-tie"  # the head is elsewhere
    model.head.weight = nn.Parameter(model.head.weight.detach().clone())
    assert tie_problems(model, ["a"]) == ()  # a.weight and b.weight are one module's, in one unit


class _View:
    def __init__(self, module: nn.Module) -> None:
        self.pl_module = module


def test_the_plans_configure_model_is_removed_when_the_fit_ends() -> None:
    calls: list[str] = []

    class Module(nn.Module):
        def configure_model(self) -> None:
            calls.append("own")

    module = Module()
    adapter = ModelParallelStrategyAdapter(fsdp_plan={"x": {}})
    adapter.connect(_View(module))  # type: ignore[arg-type]
    adapter.apply_plan = lambda: calls.append("plan")  # type: ignore[method-assign]
    adapter._install_configure_model()
    adapter._install_configure_model()  # a second fit installs over the first without stacking
    module.configure_model()
    assert calls == ["own", "plan"]
    adapter.on_fit_teardown()
    assert "configure_model" not in vars(module)
    module.configure_model()
    assert calls == ["own", "plan", "own"]
