"""One walk per hook: the combined walk gives what torch's own traversal gives, and a scope shares it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from finetuning_scheduler.shell.engine import (
    _param_index,
    forget,
    freeze,
    inventory,
    one_walk,
    param_index,
    thaw,
    trainable_names,
)
from finetuning_scheduler.shell.engine._param_index import walk


def torch_view(module: nn.Module) -> tuple[list[str], dict[str, str], list[int]]:
    first: dict[int, str] = {}
    aliases = {}
    for name, param in module.named_parameters(remove_duplicate=False):
        if first.setdefault(id(param), name) != name:
            aliases[name] = first[id(param)]
    named = [name for name, _ in module.named_parameters()]
    norms = [id(m) for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return named, aliases, norms


def index_view(module: nn.Module) -> tuple[list[str], dict[str, str], list[int]]:
    index = walk(module)
    return list(index.named), index.aliases, [id(m) for m in index.batch_norms]


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.block = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU())
        self.again = self.block  # a shared module: its parameters have a second name
        self.head = nn.Linear(4, 5, bias=False)
        self.head.weight = self.embed.weight  # a tied parameter
        self.register_parameter("unused", None)


def test_tied_and_shared_parameters_are_indexed_as_torch_names_them() -> None:
    model = Tied()
    assert index_view(model) == torch_view(model)
    assert walk(model).aliases == {
        "again.0.weight": "block.0.weight",
        "again.0.bias": "block.0.bias",
        "again.1.weight": "block.1.weight",
        "again.1.bias": "block.1.bias",
        "head.weight": "embed.weight",
    }


@st.composite
def module_trees(draw: st.DrawFn, depth: int = 0) -> nn.Module:
    module = nn.BatchNorm1d(2) if draw(st.booleans()) and depth else nn.Module()
    for i in range(draw(st.integers(0, 3))):
        module.register_parameter(f"p{i}", nn.Parameter(torch.zeros(1)))
    if depth < 3:
        for i in range(draw(st.integers(0, 3))):
            module.add_module(f"c{i}", draw(module_trees(depth + 1)))
    return module


@given(module_trees())
def test_any_module_tree_is_indexed_in_torch_s_order(module: nn.Module) -> None:
    assert index_view(module) == torch_view(module)


def test_a_root_with_its_own_traversal_is_walked_through_its_api() -> None:
    class Renamed(nn.Linear):
        def named_parameters(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def,override]
            for name, param in super().named_parameters(*args, **kwargs):  # type: ignore[arg-type]
                yield "renamed." + name, param

    assert list(walk(Renamed(2, 1)).named) == ["renamed.weight", "renamed.bias"]


def test_a_scope_walks_the_module_once_for_every_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    walks: list[nn.Module] = []
    real = _param_index.walk
    monkeypatch.setattr(_param_index, "walk", lambda module: walks.append(module) or real(module))
    with one_walk(model):
        freeze(model)
        thaw(model, ["1.weight"])
        assert trainable_names(model) == ("1.weight",)  # requires_grad is read live, not from the walk
        assert inventory(model).names == ("0.weight", "0.bias", "1.weight", "1.bias")
        with one_walk(model):  # a nested scope for the same module reuses the outer walk
            assert inventory(model) is inventory(model)
    assert walks == [model]
    trainable_names(model)
    assert walks == [model, model], "outside a scope every call walks"


def test_forget_makes_the_next_helper_see_a_changed_structure() -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    with one_walk(model):
        assert list(param_index(model).named) == ["0.weight", "0.bias"]
        model.append(nn.Linear(2, 1))
        assert list(param_index(model).named) == ["0.weight", "0.bias"], "the scope's walk is kept until forgotten"
        forget(model)
        assert list(param_index(model).named) == ["0.weight", "0.bias", "1.weight", "1.bias"]
        assert inventory(model).names[-1] == "1.bias"


def test_a_scope_is_for_one_module_only() -> None:
    one, other = nn.Linear(2, 1), nn.Linear(3, 1)
    with one_walk(one):
        assert param_index(other).named["weight"] is other.weight
        assert param_index(one) is param_index(one)


def test_a_fit_without_a_phase_change_walks_the_module_once_in_setup(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setup (generate, validate, freeze, thaw phase 0) walks once; fit start finds phase 0 in the optimizer by name;
    the trace counts trainable tensors in setup's walk and again only when the scheduler changes them, so epoch
    starts without a phase change do not walk. Before the scopes a one-epoch fit walked ten times."""
    import lightning.pytorch as pl
    from fts_support import BoringFTSModel, fit_kwargs

    from finetuning_scheduler import FinetuningScheduler

    model = BoringFTSModel()
    walks: list[nn.Module] = []
    real = _param_index.walk
    monkeypatch.setattr(_param_index, "walk", lambda module: walks.append(module) or real(module))
    pl.Trainer(callbacks=[FinetuningScheduler(max_depth=1)], **fit_kwargs(tmp_path, max_epochs=2)).fit(model)
    assert walks == [model]  # setup only: neither epoch start changed phase


def test_modules_whose_truth_value_is_false_or_undefined_are_walked() -> None:
    class Falsy(nn.Linear):
        def __len__(self) -> int:
            return 0  # a container-like module with parameters of its own

    class NoLen(nn.Linear):
        def __len__(self) -> int:
            raise TypeError("no len()")  # as torch.compile's wrapper of a module without __len__

    model = nn.Sequential(nn.Sequential(), Falsy(1, 1), NoLen(1, 1))
    model.add_module("missing", None)
    assert index_view(model) == torch_view(model)
    assert list(walk(model).named) == ["1.weight", "1.bias", "2.weight", "2.bias"]
