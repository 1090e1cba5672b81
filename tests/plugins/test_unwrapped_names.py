"""The built-in ``unwrapped_names`` adapter: one schedule for a model whether it is compiled/wrapped or not."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from fts_support import BoringFTSModel, Recorder, fit_kwargs
from torch import nn

from finetuning_scheduler import FinetuningScheduler
from finetuning_scheduler.core import ValidationOptions
from finetuning_scheduler.shell.lightning._naming import NameTranslationError, canonical_names, state_dict_for_module
from finetuning_scheduler.strategy_adapters import (
    FSDPStrategyAdapter,
    ModelParallelStrategyAdapter,
    UnwrappedNamesStrategyAdapter,
    make_adapter,
)

ADAPTER = "finetuning_scheduler.adapters_builtin._names:UnwrappedNamesStrategyAdapter"
PLAIN_SCHEDULE = {
    0: {"params": ["model.3.*"], "max_transition_epoch": 1},
    1: {"params": ["model.2.*"], "max_transition_epoch": 2},
    2: {"params": [r"model\.[01]\..*"]},
}


class Wrapper(nn.Module):
    """Names its child as ``torch.compile``'s OptimizedModule does (``_orig_mod``), without compiling anything."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self._orig_mod = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._orig_mod(x)  # type: ignore[no-any-return]


class WrappedBoring(BoringFTSModel):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = Wrapper(self.model)  # type: ignore[assignment]


def connected(adapter: Any, module: nn.Module, schedule: Any = None) -> Any:
    adapter.connect(
        types.SimpleNamespace(pl_module=module, raw_schedule=schedule, validation_options=ValidationOptions())
    )
    return adapter


def test_compiled_and_plain_models_share_schedule_names() -> None:
    plain = BoringFTSModel()
    compiled = BoringFTSModel()
    compiled.model = torch.compile(compiled.model)  # type: ignore[assignment]
    views = [connected(UnwrappedNamesStrategyAdapter(), m).name_map.views for m in (plain, compiled)]
    assert views[0] == views[1] == tuple(name for name, _ in plain.named_parameters())
    adapter = connected(UnwrappedNamesStrategyAdapter(), compiled, PLAIN_SCHEDULE)
    resolved = adapter.validate_ft_sched().unwrap()
    assert resolved.phases[0].names == ("model.3.weight", "model.3.bias")
    assert adapter.fts_optim_transform(list(resolved.phases[0].names)) == [
        "model._orig_mod.3.weight",
        "model._orig_mod.3.bias",
    ]
    assert adapter.logical_param_translation(["model._orig_mod.3.bias"]) == ["model.3.bias"]


def test_wrapper_components_are_configurable() -> None:
    module = nn.Sequential()
    module.add_module("shell", nn.Sequential(nn.Linear(1, 1)))
    adapter = connected(UnwrappedNamesStrategyAdapter(wrappers=["shell"]), module)
    assert adapter.name_map.views == ("0.weight", "0.bias")


def test_colliding_unwrapped_names_are_reported() -> None:
    module = nn.Module()
    module.layer = nn.Linear(1, 1)
    module._orig_mod = nn.Module()
    module._orig_mod.layer = nn.Linear(1, 1)
    failure = connected(UnwrappedNamesStrategyAdapter(), module, {0: {"params": ["layer.*"]}}).validate_ft_sched()
    assert {d.code for d in failure.failure()} == {"name-map-duplicate"}


def test_canonical_names_pass_through_and_unknown_names_raise() -> None:
    adapter = connected(UnwrappedNamesStrategyAdapter(), WrappedBoring())
    assert canonical_names(["model._orig_mod.0.bias"], adapter.name_map) == ["model._orig_mod.0.bias"]
    with pytest.raises(NameTranslationError, match="name-unknown"):
        canonical_names(["model.9.bias"], adapter.name_map)


def test_checkpoints_move_between_wrapped_and_plain_models_without_copies() -> None:
    wrapped, plain = WrappedBoring(), BoringFTSModel()
    saved = wrapped.state_dict()
    loaded = state_dict_for_module(saved, plain.state_dict().keys())
    assert list(loaded) == list(plain.state_dict())
    assert all(loaded[k] is saved[f"model._orig_mod.{k.removeprefix('model.')}"] for k in loaded)
    plain.load_state_dict(loaded, strict=True)
    back = state_dict_for_module(plain.state_dict(), wrapped.state_dict().keys())
    wrapped.load_state_dict(back, strict=True)


def test_builtin_strategy_adapters_name_like_the_unwrapped_names_adapter_and_check_their_options() -> None:
    assert issubclass(FSDPStrategyAdapter, UnwrappedNamesStrategyAdapter)
    assert issubclass(ModelParallelStrategyAdapter, UnwrappedNamesStrategyAdapter)
    module = nn.Module()
    module.block = nn.Module()
    module.block._fsdp_wrapped_module = nn.Linear(1, 1)
    assert connected(FSDPStrategyAdapter(), module).name_map.views == ("block.weight", "block.bias")
    assert FSDPStrategyAdapter(awp_overrides=["model.0"]).awp_overrides == ["model.0"]
    with pytest.raises(TypeError, match=r"awp_overrides must be a list of module names or regexes, got .model\.0."):
        FSDPStrategyAdapter(awp_overrides="model.0")  # type: ignore[arg-type]
    assert ModelParallelStrategyAdapter(fsdp_plan={"model.0": {}}).fsdp_plan == {"model.0": {}}
    with pytest.raises(TypeError, match=r"fsdp_plan must be a mapping .* got \['model.0'\]"):
        ModelParallelStrategyAdapter(fsdp_plan=["model.0"])  # type: ignore[arg-type]


def _fit(tmp_path: Path, model: pl.LightningModule, reference: str, **cfg: Any) -> tuple[Any, dict[int, Any]]:
    fts = FinetuningScheduler(
        ft_schedule=PLAIN_SCHEDULE, custom_strategy_adapters={"single_device": reference}, strategy_adapter_cfg=cfg
    )
    recorder = Recorder()
    trainer = pl.Trainer(callbacks=[fts, recorder], **fit_kwargs(tmp_path, max_epochs=3))
    trainer.fit(model)
    return trainer, recorder.epochs


@pytest.mark.parametrize("portable", [False, True])
def test_one_plain_schedule_fits_the_wrapped_model(tmp_path: Path, portable: bool) -> None:
    trainer, epochs = _fit(tmp_path, WrappedBoring(), ADAPTER, portable_checkpoints=portable)
    assert [epochs[e]["depth"] for e in range(3)] == [0, 1, 2]
    assert epochs[0]["trainable"] == ("model._orig_mod.3.weight", "model._orig_mod.3.bias")
    assert len(epochs[2]["trainable"]) == 8
    fts = next(cb for cb in trainer.callbacks if isinstance(cb, FinetuningScheduler))
    assert fts.restored_best_count == 2  # each transition reloaded the best checkpoint through the adapter
    best = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    wrapped_keys = any("_orig_mod" in key for key in best["state_dict"])
    assert wrapped_keys is not portable  # portable checkpoints store unwrapped keys; restoring the best one worked


def test_the_plain_model_fits_with_the_same_schedule(tmp_path: Path) -> None:
    _, epochs = _fit(tmp_path, BoringFTSModel(), ADAPTER)
    assert epochs[0]["trainable"] == ("model.3.weight", "model.3.bias")


def test_selected_by_builtin_name(tmp_path: Path) -> None:
    adapter = make_adapter("single_device", {"single_device": "unwrapped_names", "ddp": "unwrapped_names"})
    assert type(adapter) is UnwrappedNamesStrategyAdapter
