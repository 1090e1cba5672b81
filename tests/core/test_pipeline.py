"""From YAML text to a resolved schedule in one pass: structural and model errors together, each with its line."""

from __future__ import annotations

from pathlib import Path

from finetuning_scheduler.core import (
    Location,
    ParamInventory,
    Position,
    ResolvedSchedule,
    Severity,
    UnscheduledPolicy,
    ValidationOptions,
    errors_only,
    parse_yaml,
    resolve_schedule,
    resolve_yaml,
    warnings_only,
)

DATA = Path(__file__).parent / "data"
LAYER = (
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
)
LLAMA = ParamInventory.from_names(
    [
        "model.embed_tokens.weight",
        *(f"model.layers.{i}.{part}" for i in range(4) for part in LAYER),
        "model.norm.weight",
        "lm_head.weight",
    ]
)


def test_five_mistakes_give_five_errors_each_naming_phase_key_and_line() -> None:
    path = DATA / "five_mistakes.yaml"
    found = parse_yaml(path.read_text(), path.name).bind(lambda raw: resolve_schedule(raw, LLAMA)).failure()
    errors = errors_only(found)
    assert [(d.code, d.location.phase, d.location.key, d.position.line if d.position else None) for d in errors] == [
        ("unknown-key", 0, "max_transition_epochs", 7),
        ("invalid-value", 1, "lr", 13),  # within a phase, what could not be read comes first
        ("no-match", 1, "params", 11),
        ("params-not-list", 2, "params", 15),
        ("param-in-several-phases", 3, "params", 19),
    ]
    for d in errors:
        rendered = d.render()
        assert rendered.startswith(f"five_mistakes.yaml:{d.position}: error[{d.code}] phase {d.location.phase} › ")
        assert d.location.key is not None and d.location.key in rendered
    # Nothing else: phase 3's regex covers every layer, so no parameter is left unscheduled.
    assert warnings_only(found) == ()


def test_the_five_mistakes_read_as_a_user_would_see_them() -> None:
    path = DATA / "five_mistakes.yaml"
    found = resolve_yaml(path.read_text(), LLAMA, file=str(path)).failure()
    assert len(errors_only(found)) == 5
    assert f"{path}:11:7: error[no-match] phase 1 › params[1]: 'model.layers.3.self_atn.*' did not match" in "\n".join(
        d.render() for d in found
    )


def test_an_unreadable_phase_is_not_also_reported_empty() -> None:
    text = "0:\n  params: [lm_head.weight]\n1:\n  params: 'model.norm.weight'\n"
    found = resolve_yaml(text, LLAMA, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)).failure()
    assert [(d.code, d.location) for d in found] == [("params-not-list", Location(1, "params"))]


def test_an_unreadable_schedule_is_not_also_reported_empty() -> None:
    found = resolve_yaml("- lm_head.weight\n", LLAMA, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)).failure()
    assert [d.code for d in found] == ["schedule-not-mapping"]


def test_a_truly_empty_phase_is_still_reported() -> None:
    text = "0:\n  params: [lm_head.weight]\n  lr: fast\n1:\n  params: []\n"
    found = resolve_yaml(text, LLAMA, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)).failure()
    assert [(d.code, d.location.phase) for d in found] == [("invalid-value", 0), ("empty-phase", 1)]


def test_warnings_are_kept_when_only_the_structure_is_wrong() -> None:
    text = "0:\n  params: [lm_head.weight]\n  lr: 0.1\n  typo: 1\n"
    found = resolve_yaml(text, LLAMA).failure()
    assert [(d.code, d.severity) for d in found] == [
        ("unknown-key", Severity.ERROR),
        ("lr-in-phase-0", Severity.WARNING),
        ("unscheduled-params", Severity.WARNING),
    ]


def test_a_structural_problem_does_not_hide_a_model_problem_in_the_same_phase() -> None:
    text = "0:\n  params: [lm_head.weight, lm_haed.bias]\n  max_transition_epoch: '3'\n"
    found = resolve_yaml(text, LLAMA, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)).failure()
    assert [(d.code, d.location, d.position) for d in found] == [
        ("invalid-value", Location(0, "max_transition_epoch"), Position(3, 3)),
        ("no-match", Location(0, "params", 1), Position(2, 28)),
    ]


def test_a_dict_schedule_resolves_without_positions() -> None:
    raw = {0: {"params": ["lm_head.weight"]}, "1": {"params": ["model.norm.weight"], "lr": "1e-5"}}
    result = resolve_schedule(raw, LLAMA, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)).unwrap()
    assert isinstance(result, ResolvedSchedule)
    assert [(p.names, p.lr) for p in result.phases] == [(("lm_head.weight",), None), (("model.norm.weight",), 1e-5)]
    found = resolve_schedule({0: {"params": ["nope"]}}, LLAMA).failure()
    assert (found[0].code, found[0].position, found[0].source) == ("no-match", None, None)


def test_a_yaml_syntax_error_stops_before_validation() -> None:
    (found,) = resolve_yaml("0:\n  params: [a\n", LLAMA, file="s.yaml").failure()
    assert (found.code, found.source) == ("yaml-syntax", "s.yaml")
