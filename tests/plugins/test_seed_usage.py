"""The seed document's usage, end to end: an FTS-style naming plugin installed as a distribution, selected by its
entry-point name and by both path formats, one adapter shared by several strategy flags, configured through
strategy_adapter_cfg, next to a broken sibling plugin that only warns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import pytest
from fts_support import BoringFTSModel, Recorder, fit_kwargs

import finetuning_scheduler.strategy_adapters.base as fts_base_path
from finetuning_scheduler import FinetuningScheduler, StrategyAdapter

if TYPE_CHECKING:
    from conftest import Site  # tests/plugins/conftest.py (fixtures only at run time)

# An adapter written the FTS way: schedule names from get_named_params_for_schedule_validation, translated back and
# forth by fts_optim_transform / logical_param_translation ("layer3.w" is "model.3.weight").
NAMING_PLUGIN = """
    from finetuning_scheduler.strategy_adapters import StrategyAdapter

    SEEN_CFG = []


    def _short(name):
        _, index, kind = name.split(".")
        return f"layer{index}.{kind[0]}"


    def _long(name):
        layer, kind = name.split(".")
        return f"model.{layer.removeprefix('layer')}.{'weight' if kind == 'w' else 'bias'}"


    class ShortNamesAdapter(StrategyAdapter):
        def __init__(self, use_tl_names: bool = False) -> None:
            super().__init__()
            self.use_tl_names = use_tl_names
            SEEN_CFG.append(use_tl_names)

        def get_named_params_for_schedule_validation(self):
            named = dict(self.pl_module.named_parameters())
            return {(_short(n) if self.use_tl_names else n): p for n, p in named.items()}

        def fts_optim_transform(self, orig_pl, inspect_only=False):
            return [_long(n) if self.use_tl_names else n for n in orig_pl]

        def logical_param_translation(self, param_names):
            return [_short(n) if self.use_tl_names else n for n in param_names]
"""
SCHEDULE = {0: {"params": ["layer3.w", "layer3.b"]}, 1: {"params": ["layer2.*"]}, 2: {"params": ["layer[01].*"]}}


@pytest.fixture
def plugins(site: Site) -> Site:
    site.install(
        "short-names",
        "1.2.0",
        {"ShortNames": "short_names_plugin:ShortNamesAdapter"},
        {"short_names_plugin": NAMING_PLUGIN},
    )
    site.install("broken-sibling", "0.0.1", {"broken": "no_such_module_anywhere:Adapter"})
    return site


def _fit(tmp_path: Path, mapping: dict[str, str], cfg: dict[str, Any] | None) -> tuple[FinetuningScheduler, Recorder]:
    fts = FinetuningScheduler(
        ft_schedule=SCHEDULE, epoch_transitions_only=False, custom_strategy_adapters=mapping, strategy_adapter_cfg=cfg
    )
    recorder = Recorder()
    pl.seed_everything(1)
    trainer = pl.Trainer(callbacks=[fts, recorder], **fit_kwargs(tmp_path, max_epochs=30))
    trainer.fit(BoringFTSModel(diverge_on_epoch=2, lr=0.05))
    return fts, recorder


@pytest.mark.parametrize(
    "reference",
    ["shortnames", "short_names_plugin:ShortNamesAdapter", "short_names_plugin.ShortNamesAdapter"],
    ids=["entry-point name (lowercased)", "colon path", "dot path"],
)
def test_seed_usage_with_each_reference_format(plugins: Site, tmp_path: Path, reference: str) -> None:
    # The seed maps both "single_device" and "auto" (Lightning turns "auto" into single_device here).
    mapping = {"single_device": reference, "auto": "short_names_plugin.ShortNamesAdapter"}
    fts, recorder = _fit(tmp_path, mapping, {"use_tl_names": True})
    import short_names_plugin

    assert short_names_plugin.SEEN_CFG[-1] is True  # strategy_adapter_cfg reached the constructor
    assert isinstance(fts.strategy_adapter, short_names_plugin.ShortNamesAdapter)
    assert isinstance(fts.strategy_adapter, StrategyAdapter)
    assert recorder.epochs[0]["trainable"] == ("model.3.weight", "model.3.bias")  # thawed by canonical names
    assert fts.curr_depth == 2 and fts.ft_schedule[2]["params"] == ["layer0.w", "layer0.b", "layer1.w", "layer1.b"]


def test_only_auto_mapped_serves_the_concrete_strategy(plugins: Site, tmp_path: Path) -> None:
    fts, _ = _fit(tmp_path, {"auto": "shortnames"}, {"use_tl_names": True})
    assert type(fts.strategy_adapter).__name__ == "ShortNamesAdapter"


def test_broken_sibling_plugin_only_warns(plugins: Site, tmp_path: Path) -> None:
    with pytest.warns(
        UserWarning, match=r"plugin .broken. \(entry point .broken. of distribution broken-sibling 0.0.1"
    ):
        fts, _ = _fit(tmp_path, {"single_device": "shortnames"}, {"use_tl_names": True})
    assert fts.curr_depth == 2


def test_fts_module_path_of_the_base_class() -> None:
    assert fts_base_path.StrategyAdapter is StrategyAdapter
