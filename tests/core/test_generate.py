"""Default schedules: FTS's implicit schedule, name for name, and the module policy."""

from __future__ import annotations

import pytest

from finetuning_scheduler.core import (
    GenerationPolicy,
    ParamInventory,
    Phase,
    Schedule,
    UnscheduledPolicy,
    ValidationOptions,
    block_of,
    generate,
    validate,
)

# `named_parameters()` of the models FTS's own tests generate schedules for (fts_behavior.md, section 2.4).
BORING = tuple(f"model.{i}.{leaf}" for i in range(4) for leaf in ("weight", "bias"))  # 4 x nn.Linear
PARITY_RNN = (  # nn.LSTM(10, 20) then nn.Linear(20, 5)
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "linear_out.weight",
    "linear_out.bias",
)
COMPLEX_NESTED = (  # a parent module with its own parameter, then two conv blocks
    "test.encoder.0.parent_param",
    "test.encoder.0.module_dict.conv.weight",
    "test.encoder.0.module_dict.conv.bias",
    "test.encoder.0.bn.weight",
    "test.encoder.0.bn.bias",
    "test.encoder.1.conv.weight",
    "test.encoder.1.conv.bias",
    "test.encoder.1.bn.weight",
    "test.encoder.1.bn.bias",
    "test.decoder.conv.weight",
    "test.decoder.conv.bias",
    "test.decoder.bn.weight",
    "test.decoder.bn.bias",
)


def params(schedule: Schedule) -> list[tuple[str, ...]]:
    return [phase.params for phase in schedule.phases]


def test_fts_boring_model() -> None:
    found = params(generate(ParamInventory.from_names(BORING)))
    assert len(found) == 4
    assert found[0] == ("model.3.bias", "model.3.weight")
    assert found[1] == ("model.2.bias", "model.2.weight")
    assert found[-1] == ("model.0.bias", "model.0.weight")


def test_fts_parity_rnn() -> None:
    found = params(generate(ParamInventory.from_names(PARITY_RNN)))
    assert found == [
        ("linear_out.bias", "linear_out.weight"),
        ("rnn.bias_hh_l0", "rnn.bias_ih_l0"),
        ("rnn.weight_hh_l0", "rnn.weight_ih_l0"),
    ]


def test_fts_complex_nested_model_leaves_the_first_parameter_alone_last() -> None:
    found = params(generate(ParamInventory.from_names(COMPLEX_NESTED)))
    assert len(found) == 7
    assert found[1] == ("test.decoder.conv.bias", "test.decoder.conv.weight")
    assert found[-1] == ("test.encoder.0.parent_param",)


def test_generated_phases_carry_no_epoch_or_lr() -> None:
    schedule = generate(ParamInventory.from_names(BORING))
    assert all(phase == Phase(phase.params) for phase in schedule.phases)


def test_module_policy_gives_one_phase_per_block_head_first() -> None:
    names = (
        "transformer.wte.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.0.mlp.c_fc.weight",
        "transformer.h.1.attn.c_attn.weight",
        "transformer.h.1.mlp.c_fc.weight",
        "transformer.ln_f.weight",
        "transformer.ln_f.bias",
        "lm_head.weight",
    )
    found = params(generate(ParamInventory.from_names(names), GenerationPolicy.MODULE))
    assert found == [
        ("lm_head.weight",),
        ("transformer.ln_f.weight", "transformer.ln_f.bias"),
        ("transformer.h.1.attn.c_attn.weight", "transformer.h.1.mlp.c_fc.weight"),
        ("transformer.h.0.attn.c_attn.weight", "transformer.h.0.mlp.c_fc.weight"),
        ("transformer.wte.weight",),
    ]


@pytest.mark.parametrize(
    ("name", "block"),
    [
        ("model.layers.11.self_attn.q_proj.weight", "model.layers.11"),
        ("blocks.0.attn.W_Q", "blocks.0"),
        ("model.0.weight", "model.0"),
        ("encoder.layer.3", "encoder.layer.3"),
        ("classifier.bias", "classifier"),
        ("weight", ""),
    ],
)
def test_block_of(name: str, block: str) -> None:
    assert block_of(name) == block


@pytest.mark.parametrize("policy", list(GenerationPolicy))
@pytest.mark.parametrize("names", [BORING, PARITY_RNN, COMPLEX_NESTED], ids=["boring", "rnn", "nested"])
def test_a_generated_schedule_validates_and_thaws_everything(names: tuple[str, ...], policy: GenerationPolicy) -> None:
    inventory = ParamInventory.from_names(names)
    options = ValidationOptions(unscheduled=UnscheduledPolicy.ERROR)
    resolved = validate(generate(inventory, policy), inventory, options).unwrap()
    assert sorted(resolved.names_through(resolved.max_depth)) == sorted(names)
    assert resolved.warnings == ()


def test_a_model_without_parameters_gets_an_empty_schedule() -> None:
    inventory = ParamInventory.from_names(())
    assert generate(inventory) == Schedule(())
    assert [d.code for d in validate(generate(inventory), inventory).failure()] == ["schedule-empty"]
