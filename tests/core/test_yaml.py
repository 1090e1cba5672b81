"""YAML in and out: positions, duplicate keys, syntax errors, anchors, and a stable, faithful dumper."""

from __future__ import annotations

import math

import pytest

from finetuning_scheduler.core import (
    ClassInit,
    Location,
    LRSchedulerInit,
    OptimizerInit,
    Phase,
    Position,
    Schedule,
    dump_schedule,
    parse_yaml,
    schedule_to_data,
    structure_schedule,
)


def reload(schedule: Schedule) -> Schedule:
    return parse_yaml(dump_schedule(schedule)).bind(structure_schedule).unwrap()


# --- positions ----------------------------------------------------------------------------------------------------


def test_every_node_has_its_position() -> None:
    text = "0:\n  params:\n    - head.weight\n    - head.bias\n1:\n  params: [body.*]\n  lr: 1.0e-5\n"
    source = parse_yaml(text, "s.yaml").unwrap().source
    assert source.file == "s.yaml"
    assert source.positions[(0,)] == Position(1, 1)
    assert source.positions[(0, "params")] == Position(2, 3)
    assert source.positions[(0, "params", 1)] == Position(4, 7)
    assert source.positions[(1, "params", 0)] == Position(6, 12)
    assert source.positions[(1, "lr")] == Position(7, 3)


def test_quoted_phase_keys_are_positioned_under_their_index() -> None:
    source = parse_yaml("'0':\n  params: [a]\n").unwrap().source
    assert source.positions[(0, "params")] == Position(2, 3)


def test_a_missing_node_is_positioned_at_its_nearest_ancestor() -> None:
    source = parse_yaml("0:\n  params: [a]\n").unwrap().source
    assert source.position_of((0, "new_optimizer", "optimizer_init")) == Position(1, 1)


# --- errors -------------------------------------------------------------------------------------------------------


def test_a_duplicate_phase_is_an_error_at_its_second_occurrence() -> None:
    (found,) = parse_yaml("0:\n  params: [a]\n1:\n  params: [b]\n0:\n  params: [c]\n", "s.yaml").failure()
    assert (found.code, found.location, found.position, found.source) == (
        "duplicate-key",
        Location(0),
        Position(5, 1),
        "s.yaml",
    )
    assert "first written at line 1, again at line 5" in found.message


def test_a_duplicate_key_inside_a_phase_is_an_error() -> None:
    (found,) = parse_yaml("0:\n  params: [a]\n  lr: 1.0\n  lr: 2.0\n").failure()
    assert (found.code, found.location, found.position) == ("duplicate-key", Location(0, "lr"), Position(4, 3))


def test_a_duplicate_key_deep_inside_an_optimizer_block_is_an_error() -> None:
    text = "1:\n  new_optimizer:\n    optimizer_init:\n      class_path: a.B\n      class_path: c.D\n"
    (found,) = parse_yaml(text).failure()
    assert found.location == Location(1, "new_optimizer", subpath=("optimizer_init", "class_path"))
    assert found.position == Position(5, 7)


def test_quoted_and_plain_phase_keys_are_the_same_phase() -> None:
    (found,) = parse_yaml("0:\n  params: [a]\n'0':\n  params: [b]\n").failure()
    assert (found.code, found.location, found.position) == ("duplicate-key", Location(0), Position(3, 1))


def test_every_duplicate_is_reported_once() -> None:
    text = "0:\n  params: [a]\n0:\n  params: [b]\n  params: [c]\n1:\n  lr: 1.0\n  lr: 2.0\n"
    found = parse_yaml(text).failure()
    # The repeated `params` inside the repeated phase 0 would only repeat the phase's report.
    assert [(d.location, d.position) for d in found] == [
        (Location(0), Position(3, 1)),
        (Location(1, "lr"), Position(8, 3)),
    ]


def test_a_syntax_error_names_its_line() -> None:
    (found,) = parse_yaml("0:\n  params: [a, b\n1:\n  params: [c]\n", "s.yaml").failure()
    assert (found.code, found.source) == ("yaml-syntax", "s.yaml")
    assert found.position is not None and found.position.line == 3
    assert found.message.startswith("not valid YAML: ")


def test_a_control_character_is_a_syntax_error_at_its_position() -> None:
    (found,) = parse_yaml("0:\n  params: [a\x1fb]\n", "s.yaml").failure()
    assert (found.code, found.position, found.source) == ("yaml-syntax", Position(2, 13), "s.yaml")
    assert found.message == "not valid YAML: character #x001f is not allowed"


def test_absurd_nesting_is_a_syntax_error_not_a_crash() -> None:
    (found,) = parse_yaml("0: " + "[" * 1000 + "]" * 1000 + "\n").failure()
    assert (found.code, found.message) == ("yaml-syntax", "not valid YAML: nested too deeply")


@pytest.mark.parametrize("key", ["+-3", "¹", "1.5", "0x1"])
def test_only_plain_integers_are_phase_indices(key: str) -> None:
    raw = parse_yaml(f"'{key}':\n  params: [a]\n").unwrap()
    assert list(raw.data) == [key]
    assert raw.source.positions[(key,)] == Position(1, 1)


def test_several_documents_are_a_syntax_error() -> None:
    (found,) = parse_yaml("0: {params: [a]}\n---\n1: {params: [b]}\n").failure()
    assert found.code == "yaml-syntax"


def test_an_empty_text_is_no_data() -> None:
    raw = parse_yaml("", "s.yaml").unwrap()
    assert (raw.data, raw.source.file) == (None, "s.yaml")


def test_tagged_python_objects_are_refused() -> None:
    (found,) = parse_yaml("0: !!python/object/apply:os.system ['true']\n").failure()
    assert found.code == "yaml-syntax"


# --- anchors, aliases and merge keys -----------------------------------------------------------------------------


def test_an_alias_reuses_a_block_without_being_a_duplicate() -> None:
    text = """\
0:
  params: [a]
1:
  params: [b]
  new_optimizer: &adamw
    optimizer_init: {class_path: torch.optim.AdamW}
2:
  params: [c]
  new_optimizer: *adamw
"""
    schedule = parse_yaml(text).bind(structure_schedule).unwrap()
    assert schedule.phases[2].new_optimizer == OptimizerInit(ClassInit("torch.optim.AdamW"))


def test_a_problem_below_an_alias_is_cited_at_the_alias() -> None:
    text = """\
0:
  params: [a]
1:
  params: [b]
  new_optimizer: &adamw
    optimizer_init: {class_path: torch.optim.AdamW, typo: 1}
2:
  params: [c]
  new_optimizer: *adamw
"""
    problems = parse_yaml(text).bind(structure_schedule).failure()
    assert [(d.location.phase, d.position) for d in problems] == [(1, Position(6, 5)), (2, Position(9, 3))]


def test_nested_aliases_are_walked_once_each() -> None:
    # Ten references to ten references to ... : a walk that followed every alias would visit 10**5 paths.
    levels = ["l0: &l0 [a, b]"]
    levels += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 6)]
    raw = parse_yaml("\n".join(levels) + "\n").unwrap()
    assert len(raw.source.positions) < 100


def test_a_merge_key_may_override_merged_keys() -> None:
    # `<<: *base` then `params:` is YAML's way to extend a block: overriding a merged key is not a duplicate.
    text = """\
0: &base
  params: [a]
  max_transition_epoch: 3
1:
  <<: *base
  params: [b]
"""
    schedule = parse_yaml(text).bind(structure_schedule).unwrap()
    assert schedule.phases[1] == Phase(("b",), max_transition_epoch=3)


def test_a_duplicate_next_to_a_merge_key_is_still_an_error() -> None:
    text = "0: &base\n  params: [a]\n1:\n  <<: *base\n  params: [b]\n  params: [c]\n"
    (found,) = parse_yaml(text).failure()
    assert (found.code, found.location, found.position) == ("duplicate-key", Location(1, "params"), Position(6, 3))


def test_a_self_referencing_alias_is_reported_not_a_crash() -> None:
    raw = parse_yaml("0: &phase\n  params: *phase\n").unwrap()
    problems = structure_schedule(raw).failure()
    assert [(d.code, d.location) for d in problems] == [("params-not-list", Location(0, "params"))]


# --- dumping --------------------------------------------------------------------------------------------------


def test_schedule_to_data_omits_defaults() -> None:
    schedule = Schedule((Phase(("a",)), Phase(("b",), max_transition_epoch=-1, lr=None), Phase((), 2)))
    assert schedule_to_data(schedule) == {
        0: {"params": ["a"]},
        1: {"params": ["b"]},
        2: {"max_transition_epoch": 2},
    }


def test_the_dump_is_the_fts_format_and_stable() -> None:
    schedule = Schedule(
        (
            Phase(("model.classifier.bias", "model.classifier.weight"), max_transition_epoch=3),
            Phase(("model.albert.pooler.*",)),
            Phase(("model.albert.encoder.*.ffn_output.*",), max_transition_epoch=9, lr=1e-6),
        )
    )
    expected = """\
0:
  params:
  - model.classifier.bias
  - model.classifier.weight
  max_transition_epoch: 3
1:
  params:
  - model.albert.pooler.*
2:
  params:
  - model.albert.encoder.*.ffn_output.*
  max_transition_epoch: 9
  lr: 1.0e-06
"""
    assert dump_schedule(schedule) == expected
    assert dump_schedule(reload(schedule)) == expected


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule((Phase(("x",)), Phase(("y",), lr=math.inf))),
        Schedule((Phase(("1e5", "true", "null", "0", "- a", "a: b", "#c", "'q'", "")),)),
        Schedule((Phase(("ünïcödé.weight", "tab\there", "new\nline")),)),
        Schedule(
            (
                Phase(("a",)),
                Phase(
                    ("b",),
                    new_optimizer=OptimizerInit(ClassInit("torch.optim.SGD", {"lr": 0.1, "nesterov": True})),
                    new_lr_scheduler=LRSchedulerInit(
                        ClassInit("torch.optim.lr_scheduler.CosineAnnealingLR", {"T_max": 10, "eta_min": 1e-7}),
                        {"interval": "step", "monitor": None},
                        (1e-5, 2e-5, 3e-5, 4e-5, 5e-5),
                        True,
                    ),
                ),
            )
        ),
    ],
    ids=["infinite-lr", "strings-that-look-like-yaml", "unicode-and-control", "reinit-blocks"],
)
def test_dump_then_load_gives_the_same_schedule(schedule: Schedule) -> None:
    assert reload(schedule) == schedule
