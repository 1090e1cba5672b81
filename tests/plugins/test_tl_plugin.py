"""The example plugin package (examples/plugins/fts_tl_names), pip-installed: TransformerLens names for GPT-2."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from finetuning_scheduler.core import AdapterSpec, ValidationOptions, build_name_map, errors_only, render_all
from finetuning_scheduler.shell.engine.torch_helpers import freeze, thaw, trainable_names
from finetuning_scheduler.strategy_adapters import AdapterError, discover_adapters, make_adapter

pytestmark = pytest.mark.slow  # GPT-2 fits and a pip-installed plugin

transformers = pytest.importorskip("transformers")

ADAPTER = "fts_tl_names.adapter:GPT2TransformerLensNamesAdapter"
CONFIG = {"n_layer": 2, "n_embd": 16, "n_head": 2, "n_positions": 16, "vocab_size": 32}
TL_SCHEDULE = {
    0: {"params": ["unembed.W_U", "ln_final.*"], "max_transition_epoch": 1},
    1: {"params": [r"blocks\.1\..*"], "max_transition_epoch": 2, "lr": 1e-4},
    2: {"params": [r"blocks\.0\..*", "pos_embed.W_pos"]},
}


def gpt2(lm_head: bool = True, **overrides: Any) -> nn.Module:
    config = transformers.GPT2Config(**{**CONFIG, **overrides}, bos_token_id=0, eos_token_id=0)
    return (transformers.GPT2LMHeadModel if lm_head else transformers.GPT2Model)(config)


class TinyGPT2(pl.LightningModule):
    """A tiny GPT-2 language model on fixed random tokens, plus a small extra head outside the GPT-2."""

    def __init__(self, model: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model if model is not None else gpt2()
        self.probe = nn.Linear(CONFIG["n_embd"], 2)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        # The probe joins the graph (with no effect on the loss) so a phase that thaws only the probe can train.
        probe = self.probe(torch.ones(1, CONFIG["n_embd"])).sum() * 0.0
        return self.model(input_ids=batch, labels=batch).loss + probe  # type: ignore[no-any-return]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val_loss", self.model(input_ids=batch, labels=batch).loss)

    def _tokens(self, seed: int) -> DataLoader[torch.Tensor]:
        data = torch.randint(0, CONFIG["vocab_size"], (16, 8), generator=torch.Generator().manual_seed(seed))
        return DataLoader(data, batch_size=4)  # type: ignore[arg-type]

    def train_dataloader(self) -> DataLoader[torch.Tensor]:
        return self._tokens(1)

    def val_dataloader(self) -> DataLoader[torch.Tensor]:
        return self._tokens(2)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=1e-3)


def connected(adapter: Any, module: nn.Module, schedule: Any = None, **options: Any) -> Any:
    """Attach an adapter to a stand-in for the callback: just the attributes the adapter reads."""
    handle = types.SimpleNamespace(
        pl_module=module, raw_schedule=schedule, validation_options=ValidationOptions(**options)
    )
    adapter.connect(handle)
    return adapter


def tl_adapter(**cfg: Any) -> Any:
    return make_adapter("single_device", {"single_device": "transformerlens_gpt2"}, cfg)


# -- installation and selection -------------------------------------------------------------------------------------


def test_pip_installed_plugin_is_discovered_as_data(tl_plugin: Path) -> None:
    found = [spec for spec in discover_adapters() if spec.name == "transformerlens_gpt2"]
    assert found == [AdapterSpec("transformerlens_gpt2", ADAPTER, "fts-tl-names", "0.1.0")]


def test_plugin_selected_by_name_for_several_flags_with_cfg(tl_plugin: Path) -> None:
    custom = {"single_device": "transformerlens_gpt2", "ddp_spawn": ADAPTER, "ddp": ADAPTER.replace(":", ".")}
    adapters = [make_adapter(flag, custom, {"use_tl_names": True, "fused": "widen"}) for flag in custom]
    assert {type(a).__name__ for a in adapters} == {"GPT2TransformerLensNamesAdapter"}
    assert all(a.use_tl_names and a.fused_policy.value == "widen" for a in adapters)


def test_bad_option_is_a_constructor_error(tl_plugin: Path) -> None:
    with pytest.raises(AdapterError, match=r"could not be built .*fused must be one of \['error', 'widen'\]"):
        tl_adapter(fused="mask")


# -- names ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lm_head", [True, False])
def test_static_table_covers_a_real_gpt2(tl_plugin: Path, lm_head: bool) -> None:
    from fts_tl_names import gpt2_tl_bindings

    model = gpt2(lm_head, n_layer=3)
    names = [name for name, _ in model.named_parameters()]
    base, head = ("transformer.", "lm_head.") if lm_head else ("", None)
    name_map = build_name_map(names, gpt2_tl_bindings(3, base, head), passthrough=False).unwrap()
    assert set(name_map.by_canonical) == set(names)  # every parameter has a TransformerLens name
    assert len(name_map.views) == 16 * 3 + 4 + (1 if lm_head else 0)


def test_schedule_space_is_transformerlens_names(tl_plugin: Path) -> None:
    module = TinyGPT2()
    adapter = connected(tl_adapter(), module)
    named = adapter.get_named_params_for_schedule_validation()
    params = dict(module.named_parameters())
    assert named["blocks.0.attn.W_Q"] is params["model.transformer.h.0.attn.c_attn.weight"]
    assert named["unembed.W_U"] is named["embed.W_E"] is params["model.transformer.wte.weight"]
    assert named["probe.weight"] is params["probe.weight"]  # outside the GPT-2: its own name
    assert "unembed.b_U" not in named
    assert adapter.logical_param_translation(["model.transformer.h.1.attn.c_attn.bias"]) == [
        "blocks.1.attn.b_Q",
        "blocks.1.attn.b_K",
        "blocks.1.attn.b_V",
    ]


def test_schedule_validates_and_translates(tl_plugin: Path) -> None:
    module = TinyGPT2()
    adapter = connected(tl_adapter(), module, {**TL_SCHEDULE, 3: {"params": ["probe.*"]}})
    resolved = adapter.validate_ft_sched().unwrap()
    assert resolved.phases[0].names == ("embed.W_E", "unembed.W_U", "ln_final.w", "ln_final.b")
    assert adapter.fts_optim_transform(list(resolved.phases[0].names)) == [
        "model.transformer.wte.weight",
        "model.transformer.ln_f.weight",
        "model.transformer.ln_f.bias",
    ]
    freeze(module)
    thaw(module, adapter.fts_optim_transform(list(resolved.phases[1].names)))
    assert trainable_names(module) == tuple(n for n, _ in module.named_parameters() if ".h.1." in n)


def test_partial_qkv_is_an_error_unless_widened(tl_plugin: Path) -> None:
    schedule = {0: {"params": ["blocks.0.attn.W_Q", "unembed.W_U"]}, 1: {"params": ["blocks.1.*", "probe.*"]}}
    failed = errors_only(connected(tl_adapter(), TinyGPT2(), schedule).validate_ft_sched().failure())
    assert [d.code for d in failed] == ["fused-partial"]
    assert "blocks.0.attn.W_K, blocks.0.attn.W_V" in render_all(failed)
    widened = connected(tl_adapter(fused="widen"), TinyGPT2(), schedule)
    resolved = widened.validate_ft_sched().unwrap()
    assert "fused-widened" in [d.code for d in resolved.warnings]
    assert "model.transformer.h.0.attn.c_attn.weight" in widened.fts_optim_transform(list(resolved.phases[0].names))


def test_synthetic_bias_cannot_be_thawed(tl_plugin: Path) -> None:
    schedule = {0: {"params": ["unembed.b_U"]}, 1: {"params": [".*"]}}
    (problem,) = connected(tl_adapter(), TinyGPT2(), schedule).validate_ft_sched().failure()
    assert problem.code == "name-synthetic"


def test_compiled_gpt2_has_the_same_schedule_names(tl_plugin: Path) -> None:
    plain = connected(tl_adapter(), TinyGPT2()).name_map.views
    compiled_module = TinyGPT2(torch.compile(gpt2()))
    compiled = connected(tl_adapter(), compiled_module)
    assert compiled.name_map.views == plain
    assert compiled.fts_optim_transform(["embed.W_E"]) == ["model._orig_mod.transformer.wte.weight"]


def test_canonical_names_when_tl_names_are_off(tl_plugin: Path) -> None:
    module = TinyGPT2()
    adapter = connected(tl_adapter(use_tl_names=False), module)
    assert adapter.name_map.views == tuple(name for name, _ in module.named_parameters())


def test_a_module_without_gpt2_is_a_clear_error(tl_plugin: Path) -> None:
    adapter = connected(tl_adapter(), nn.Linear(2, 2), {0: {"params": ["weight"]}})
    (problem,) = adapter.validate_ft_sched().failure()
    assert problem.code == "tl-no-gpt2" and problem.hint is not None and "gpt2_module" in problem.hint


def test_generated_schedule_is_in_transformerlens_names(tl_plugin: Path, tmp_path: Path) -> None:
    adapter = connected(tl_adapter(), TinyGPT2())
    written = yaml.safe_load(adapter.gen_ft_schedule(tmp_path).read_text())
    assert written[0]["params"] == ["probe.bias", "probe.weight"]
    assert written[1]["params"] == ["embed.W_E", "unembed.W_U", "ln_final.b"]
    assert ["blocks.1.attn.W_Q", "blocks.1.attn.W_K", "blocks.1.attn.W_V", "blocks.1.ln1.b"] in [
        phase["params"] for phase in written.values()
    ]


# -- a real fit -----------------------------------------------------------------------------------------------------


def _fit(tmp_path: Path, reference: str, **fts_options: Any) -> tuple[Any, dict[int, Any]]:
    from fts_support import Recorder, fit_kwargs

    from finetuning_scheduler import FinetuningScheduler

    fts = FinetuningScheduler(custom_strategy_adapters={"single_device": reference}, **fts_options)
    recorder = Recorder()
    trainer = pl.Trainer(callbacks=[fts, recorder], **fit_kwargs(tmp_path, max_epochs=3, limit_train_batches=2))
    trainer.fit(TinyGPT2())
    return fts, recorder.epochs


def test_fit_with_a_transformerlens_schedule(tl_plugin: Path, tmp_path: Path) -> None:
    fts, epochs = _fit(tmp_path, ADAPTER, ft_schedule=TL_SCHEDULE, max_depth=2)
    assert [epochs[e]["depth"] for e in range(3)] == [0, 1, 2]
    assert set(epochs[0]["trainable"]) == {
        "model.transformer.wte.weight",
        "model.transformer.ln_f.weight",
        "model.transformer.ln_f.bias",
    }
    assert all(".h.0." not in n for n in epochs[1]["trainable"]) and any(".h.1." in n for n in epochs[1]["trainable"])
    assert "model.transformer.wpe.weight" in epochs[2]["trainable"] and "probe.weight" not in epochs[2]["trainable"]
    assert len(epochs[2]["groups"]) == 3 and epochs[2]["lrs"][1] == 1e-4
    assert fts.ft_schedule_dict()[1]["params"][2] == "blocks.1.attn.W_Q"  # the schedule is kept in TL names


def test_fit_in_implicit_mode_generates_a_transformerlens_schedule(tl_plugin: Path, tmp_path: Path) -> None:
    fts, epochs = _fit(tmp_path, ADAPTER, max_depth=1)  # phases move on by early stopping: not within 3 epochs
    assert set(epochs[0]["trainable"]) == {"probe.weight", "probe.bias"}
    assert fts.ft_schedule_dict()[1]["params"][:2] == ["embed.W_E", "unembed.W_U"]


def test_fit_with_the_plugin_selected_by_its_entry_point_name(tl_plugin: Path, tmp_path: Path) -> None:
    _, epochs = _fit(tmp_path, "transformerlens_gpt2", ft_schedule=TL_SCHEDULE, max_depth=2)
    assert [epochs[e]["depth"] for e in range(3)] == [0, 1, 2]
    assert "model.transformer.wte.weight" in epochs[0]["trainable"]


def test_fit_with_transformerlens_schedule_resumes_from_a_checkpoint(tl_plugin: Path, tmp_path: Path) -> None:
    from fts_support import Recorder, fit_kwargs

    from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint

    def fit(root: Path, max_epochs: int, ckpt_path: str | None = None) -> tuple[dict[int, Any], dict[str, Any]]:
        pl.seed_everything(11)
        recorder = Recorder()
        schedule = {**TL_SCHEDULE, 2: {**TL_SCHEDULE[2], "max_transition_epoch": 2}}
        fts = FinetuningScheduler(
            ft_schedule=schedule,
            epoch_transitions_only=True,
            custom_strategy_adapters={"single_device": "transformerlens_gpt2"},
            strategy_adapter_cfg={"portable_checkpoints": True},
        )
        checkpoint = FTSCheckpoint(monitor="val_loss", dirpath=root / "ck", save_last=True)
        trainer = pl.Trainer(
            callbacks=[fts, checkpoint, recorder],
            **fit_kwargs(root, max_epochs=max_epochs, limit_train_batches=2, enable_checkpointing=True),
        )
        # No dropout: Lightning does not restore RNG states, so only a deterministic model can match to the bit.
        model = TinyGPT2(gpt2(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
        trainer.fit(model, ckpt_path=ckpt_path)
        return recorder.epochs, {k: v.clone() for k, v in model.state_dict().items()}

    twin, twin_weights = fit(tmp_path / "twin", 4)
    fit(tmp_path / "first", 2)  # interrupted before the last phase
    last = tmp_path / "first" / "ck" / "last.ckpt"
    saved_epoch = torch.load(last, weights_only=True)["epoch"]
    resumed, weights = fit(tmp_path / "first", 4, ckpt_path=str(last))
    assert [twin[e]["depth"] for e in range(4)] == [0, 1, 2, 2]
    assert min(resumed) == saved_epoch + 1 and resumed[min(resumed)]["depth"] < 2
    assert resumed == {e: state for e, state in twin.items() if e > saved_epoch}
    assert all(torch.equal(weights[k], twin_weights[k]) for k in twin_weights)
