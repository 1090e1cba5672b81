"""Structuring plain data into a Schedule: one bad schedule per structural rule, with code, location and line."""

from __future__ import annotations

import pytest

from finetuning_scheduler.core import (
    ClassInit,
    Diagnostic,
    Location,
    LRSchedulerInit,
    OptimizerInit,
    Phase,
    Position,
    RawSchedule,
    Schedule,
    errors_only,
    parse_yaml,
    structure_leniently,
    structure_schedule,
)


def structural(text: str) -> tuple[Schedule, tuple[Diagnostic, ...]]:
    """Parse YAML and structure it leniently: the schedule that could be read and every problem."""
    return structure_leniently(parse_yaml(text, "s.yaml").unwrap())


def only(text: str) -> Diagnostic:
    """The single problem a schedule has (fails the test if there are more or none)."""
    _, problems = structural(text)
    assert len(problems) == 1, [d.render() for d in problems]
    return problems[0]


# --- one bad schedule per rule ---------------------------------------------------------------------------------


def test_a_list_is_not_a_schedule() -> None:
    found = only("- model.0.weight\n- model.1.weight\n")
    assert (found.code, found.location, found.position, found.source) == (
        "schedule-not-mapping",
        Location(),
        Position(1, 1),
        "s.yaml",
    )


def test_an_empty_file_is_not_a_schedule() -> None:
    found = only("# nothing but a comment\n")
    assert (found.code, found.location, found.position) == ("schedule-not-mapping", Location(), None)


def test_a_phase_key_must_be_an_integer() -> None:
    found = only("0:\n  params: [a]\nwarmup:\n  params: [b]\n")
    assert (found.code, found.location) == ("phase-key-not-int", Location())
    assert found.position == Position(3, 1), "the error points at the offending key, not at the top of the file"
    assert "'warmup'" in found.message


def test_a_phase_given_twice_under_equivalent_keys() -> None:
    # YAML itself rejects a repeated key; a dict can still say 1 and "1".
    schedule, problems = structure_leniently(RawSchedule({0: {"params": ["a"]}, 1: {"params": ["b"]}, "1": {}}))
    assert [(d.code, d.location) for d in problems] == [("phase-key-duplicate", Location(1))]
    assert schedule.phases[1].params == ("b",)


def test_phase_keys_must_be_contiguous_from_zero() -> None:
    found = only("1:\n  params: [a]\n2:\n  params: [b]\n")
    assert (found.code, found.location, found.position) == ("phase-keys-not-contiguous", Location(), Position(1, 1))
    assert "[1, 2]" in found.message
    assert found.hint == "renumber the phases as [0, 1]"


def test_a_phase_must_be_a_mapping() -> None:
    found = only("0:\n  params: [a]\n1: [b, c]\n")
    assert (found.code, found.location, found.position) == ("phase-not-mapping", Location(1), Position(3, 1))


def test_an_unknown_phase_key_suggests_the_known_one() -> None:
    found = only("0:\n  params: [a]\n  max_transition_epochs: 3\n")
    assert (found.code, found.location, found.position) == (
        "unknown-key",
        Location(0, "max_transition_epochs"),
        Position(3, 3),
    )
    assert found.hint is not None and found.hint.startswith("did you mean 'max_transition_epoch'?")


def test_params_must_be_a_list_not_a_bare_string() -> None:
    found = only("0:\n  params: model.head.weight\n")
    assert (found.code, found.location, found.position) == ("params-not-list", Location(0, "params"), Position(2, 3))
    assert found.hint == "write `params: [model.head.weight]`"


def test_params_must_be_a_list_not_null() -> None:
    found = only("0:\n  params:\n")
    assert (found.code, found.location) == ("params-not-list", Location(0, "params"))
    assert found.hint == "give a list of names or regexes"


def test_each_param_entry_must_be_a_string() -> None:
    schedule, problems = structural("0:\n  params:\n    - a\n    - 3\n")
    assert [(d.code, d.location, d.position) for d in problems] == [
        ("param-not-string", Location(0, "params", 1), Position(4, 7))
    ]
    assert schedule.phases[0].params == ("a",), "the readable entries are kept"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("max_transition_epoch: 2.7", "expected an integer, got float 2.7"),
        ("max_transition_epoch: true", "expected an integer, got boolean True"),
        ("max_transition_epoch: '3'", "expected an integer, got str '3'"),
        ("lr: fast", "expected a number, got str 'fast'"),
        ("lr: true", "expected a number, got boolean True"),
        ("lr: [1.0e-5]", "expected a number, got list [1e-05]"),
    ],
)
def test_scalar_fields_are_strictly_typed(line: str, message: str) -> None:
    key = line.partition(":")[0]
    found = only(f"0:\n  params: [a]\n1:\n  params: [b]\n  {line}\n")
    assert (found.code, found.location, found.position) == ("invalid-value", Location(1, key), Position(5, 3))
    assert found.message == message


def test_new_optimizer_without_class_path() -> None:
    found = only("0:\n  params: [a]\n1:\n  params: [b]\n  new_optimizer:\n    optimizer_init:\n      init_args: {}\n")
    assert found.code == "invalid-value"
    assert found.location == Location(1, "new_optimizer", subpath=("optimizer_init", "class_path"))
    assert found.message == "required key missing"
    assert found.position == Position(6, 5), "a missing key is reported at its nearest written parent"


def test_new_optimizer_with_an_unknown_key() -> None:
    text = "0:\n  params: [a]\n1:\n  params: [b]\n  new_optimizer:\n    optimizer_init: {class_path: x.Y, args: {}}\n"
    found = only(text)
    assert (found.code, found.location, found.position) == (
        "invalid-value",
        Location(1, "new_optimizer", subpath=("optimizer_init",)),
        Position(6, 5),
    )
    assert found.message == "unknown key(s): args"


def test_new_lr_scheduler_reports_every_bad_field() -> None:
    text = (
        "0:\n  params: [a]\n1:\n  params: [b]\n  new_lr_scheduler:\n"
        "    lr_scheduler_init: {class_path: torch.optim.lr_scheduler.StepLR}\n"
        "    init_pg_lrs: [1.0e-5, fast]\n"
        "    use_current_optimizer_pg_lrs: yes please\n"
    )
    _, problems = structural(text)
    assert [(d.code, d.location.subpath, d.position) for d in problems] == [
        ("invalid-value", ("init_pg_lrs",), Position(7, 5)),
        ("invalid-value", ("use_current_optimizer_pg_lrs",), Position(8, 5)),
    ]


# --- what structuring accepts ---------------------------------------------------------------------------------


def test_lr_written_without_a_dot_is_accepted() -> None:
    # PyYAML reads `1e-5` as a string; FTS accepts it, and so do we (see core/_convert.py).
    schedule, problems = structural("0:\n  params: [a]\n1:\n  params: [b]\n  lr: 1e-5\n")
    assert problems == ()
    assert schedule.phases[1].lr == pytest.approx(1e-5)


def test_quoted_digit_phase_keys_are_phase_indices() -> None:
    schedule = structure_schedule({"0": {"params": ["a"]}, "1": {"params": ["b"]}}).unwrap()
    assert [p.params for p in schedule.phases] == [("a",), ("b",)]


def test_phases_are_ordered_by_index_not_by_position() -> None:
    schedule, problems = structural("1:\n  params: [b]\n0:\n  params: [a]\n")
    assert problems == ()
    assert [p.params for p in schedule.phases] == [("a",), ("b",)]


def test_every_field_structures() -> None:
    text = """\
0:
  params: [head.weight]
1:
  params: [body.*]
  max_transition_epoch: 4
  lr: 1.0e-4
  new_optimizer:
    optimizer_init:
      class_path: torch.optim.AdamW
      init_args: {weight_decay: 0.01, betas: [0.9, 0.99]}
  new_lr_scheduler:
    lr_scheduler_init:
      class_path: torch.optim.lr_scheduler.StepLR
      init_args: {step_size: 1}
    pl_lrs_cfg: {interval: epoch, frequency: 1, name: Custom}
    init_pg_lrs: [2.0e-5, 1]
    use_current_optimizer_pg_lrs: false
"""
    schedule, problems = structural(text)
    assert problems == ()
    assert schedule == Schedule(
        (
            Phase(("head.weight",)),
            Phase(
                ("body.*",),
                max_transition_epoch=4,
                lr=1e-4,
                new_optimizer=OptimizerInit(
                    ClassInit("torch.optim.AdamW", {"weight_decay": 0.01, "betas": [0.9, 0.99]})
                ),
                new_lr_scheduler=LRSchedulerInit(
                    ClassInit("torch.optim.lr_scheduler.StepLR", {"step_size": 1}),
                    {"interval": "epoch", "frequency": 1, "name": "Custom"},
                    (2e-5, 1.0),
                    False,
                ),
            ),
        )
    )


def test_a_missing_params_key_is_an_empty_phase_not_a_structural_error() -> None:
    # FTS treats a phase without `params` as empty; validation (not structuring) reports empty phases.
    schedule, problems = structural("0:\n  max_transition_epoch: 1\n")
    assert problems == ()
    assert schedule.phases == (Phase(max_transition_epoch=1),)


def test_all_problems_are_reported_at_once_in_key_order() -> None:
    text = "0:\n  lr: fast\n  params: [a, 3]\n  mte: 1\n1: nope\n3:\n  params: [c]\n"
    _, problems = structural(text)
    assert [(d.code, d.location.phase, d.location.key, d.position) for d in problems] == [
        ("phase-keys-not-contiguous", None, None, Position(1, 1)),
        ("invalid-value", 0, "lr", Position(2, 3)),
        ("param-not-string", 0, "params", Position(3, 15)),
        ("unknown-key", 0, "mte", Position(4, 3)),
        ("phase-not-mapping", 1, None, Position(5, 1)),
    ]


def test_structure_schedule_fails_with_every_error_and_leaves_its_input_alone() -> None:
    raw = {0: {"params": "a", "lr": "fast"}}
    failure = structure_schedule(raw).failure()
    assert [d.code for d in errors_only(failure)] == ["params-not-list", "invalid-value"]
    assert raw == {0: {"params": "a", "lr": "fast"}}
