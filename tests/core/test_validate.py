"""Validation against a model's parameters: one bad schedule per rule (code, location, line), and resolution."""

from __future__ import annotations

import math

import pytest

from finetuning_scheduler.core import (
    ClassInit,
    Diagnostic,
    Location,
    LRSchedulerInit,
    OptimizerInit,
    ParamInventory,
    Phase,
    Position,
    ResolvedSchedule,
    Schedule,
    Severity,
    UnscheduledPolicy,
    ValidationOptions,
    errors_only,
    parse_yaml,
    resolve_yaml,
    structure_schedule,
    validate,
    warnings_only,
)

NAMES = (
    "model.embed.weight",
    *(f"model.layers.{i}.{part}" for i in range(12) for part in ("attn.weight", "mlp.weight", "mlp.bias")),
    "model.norm.weight",
    "head.weight",
    "head.bias",
)
INVENTORY = ParamInventory.from_names(NAMES, aliases={"model.unembed.weight": "model.embed.weight"})
HEAD = "0:\n  params: [head.weight, head.bias]\n"  # a valid phase 0 that later phases are appended to


def check(text: str, options: ValidationOptions | None = None) -> tuple[Diagnostic, ...]:
    """Validate a YAML schedule against INVENTORY (unscheduled parameters ignored unless asked for)."""
    chosen = options or ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)
    result = resolve_yaml(text, INVENTORY, chosen, file="s.yaml")
    return result.failure() if not isinstance(result.value_or(None), ResolvedSchedule) else result.unwrap().warnings


def only(text: str, options: ValidationOptions | None = None) -> Diagnostic:
    found = check(text, options)
    assert len(found) == 1, [d.render() for d in found]
    return found[0]


def resolved(text: str, options: ValidationOptions | None = None) -> ResolvedSchedule:
    chosen = options or ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)
    return resolve_yaml(text, INVENTORY, chosen).unwrap()


# --- one bad schedule per rule ---------------------------------------------------------------------------------


def test_an_invalid_regex() -> None:
    found = only(HEAD + "1:\n  params:\n    - model.layers.(1\n")
    assert (found.code, found.severity, found.location, found.position) == (
        "invalid-regex",
        Severity.ERROR,
        Location(1, "params", 0),
        Position(5, 7),
    )
    assert "missing )" in found.message


def test_an_entry_that_matches_nothing_suggests_close_names() -> None:
    found = only(HEAD + "1:\n  params: [model.norm.weight, model.nrom.weight]\n")
    assert (found.code, found.location, found.position) == ("no-match", Location(1, "params", 1), Position(4, 31))
    assert found.hint is not None and "model.norm.weight" in found.hint


def test_a_regex_that_also_matches_higher_block_numbers_warns() -> None:
    found = only(HEAD + "1:\n  params: ['model.layers.1.*']\n2:\n  params: ['model.layers.[02-9].*']\n")
    assert (found.code, found.severity, found.location, found.position) == (
        "regex-overmatch",
        Severity.WARNING,
        Location(1, "params", 0),
        Position(4, 12),
    )
    assert "model.layers.10.attn.weight" in found.message


def test_a_shared_parameter_alias_thaws_the_shared_tensor_with_a_warning() -> None:
    found = only(HEAD + "1:\n  params: [model.unembed.weight, model.embed.weight]\n")
    assert (found.code, found.severity, found.location, found.position) == (
        "shared-param-alias",
        Severity.WARNING,
        Location(1, "params", 0),
        Position(4, 12),
    )
    assert "'model.embed.weight'" in found.message


def test_a_tied_alias_alone_thaws_the_shared_tensor_in_its_phase() -> None:
    # FTS drops the alias, and the shared tensor stays frozen for the whole fit when no phase names it otherwise.
    schedule = resolved(HEAD + "1:\n  params: [model.unembed.weight]\n")
    assert schedule.phases[1].names == ("model.embed.weight",)


def test_a_tied_tensor_named_in_two_phases_by_its_two_names_is_an_overlap() -> None:
    found = check(HEAD + "1:\n  params: [model.unembed.weight]\n2:\n  params: [model.embed.weight]\n")
    assert [d.code for d in found if d.is_error] == ["param-in-several-phases"]


def test_a_parameter_in_two_phases() -> None:
    found = only(HEAD + "1:\n  params: ['model.layers.0.*']\n2:\n  params: [model.layers.0.mlp.bias]\n")
    assert (found.code, found.location, found.position) == (
        "param-in-several-phases",
        Location(2, "params", 0),
        Position(6, 12),
    )
    assert found.message == "model.layers.0.mlp.bias also thawed by phase 1 › params[0] (line 4, column 12)"
    assert (found.related, found.related_position) == (Location(1, "params", 0), Position(4, 12)), "both places"


def test_overlaps_are_reported_once_per_pair_of_entries() -> None:
    text = HEAD + "1:\n  params: ['model.layers.0.*']\n2:\n  params: ['model.layers.0.m.*', 'model.layers.0.mlp.*']\n"
    found = check(text)
    assert [(d.code, d.location) for d in found] == [
        ("param-in-several-phases", Location(2, "params", 0)),
    ], "the second entry of phase 2 overlaps phase 1 on the same names: one report is enough"
    assert found[0].message.startswith("model.layers.0.mlp.weight, model.layers.0.mlp.bias also thawed")


def test_an_overlap_cites_the_entry_that_first_thawed_the_name() -> None:
    # "a.w." is a tied alias: it stands for "a.w" (its first entry), never read as the regex that would match "a.wx".
    inventory = ParamInventory.from_names(["a.w", "a.wx"], aliases={"a.w.": "a.w"})
    schedule = Schedule((Phase(("a.w.", "a.w", "a.wx")), Phase(("a.w", "a.*"))))
    found = errors_only(validate(schedule, inventory).failure())
    assert [(d.location, d.message) for d in found] == [
        (Location(1, "params", 0), "a.w also thawed by phase 0 › params[0]"),
        (Location(1, "params", 1), "a.wx also thawed by phase 0 › params[2]"),
    ]


def test_repeating_a_name_within_one_phase_is_harmless() -> None:
    # FTS rejects this; thawing a parameter twice in the same phase is the same as once, so we accept it.
    result = resolved(HEAD + "1:\n  params: [model.norm.weight, 'model.norm.*']\n")
    assert result.phases[1].names == ("model.norm.weight",)


def test_a_max_transition_epoch_below_minus_one() -> None:
    found = only(HEAD + "  max_transition_epoch: -2\n")
    assert (found.code, found.location, found.position) == (
        "invalid-max-transition-epoch",
        Location(0, "max_transition_epoch"),
        Position(3, 3),
    )


def test_epoch_transitions_only_needs_an_epoch_on_every_phase() -> None:
    text = HEAD + "  max_transition_epoch: 2\n1:\n  params: [model.norm.weight]\n"
    found = only(text, ValidationOptions(epoch_transitions_only=True, unscheduled=UnscheduledPolicy.IGNORE))
    assert (found.code, found.location, found.position) == ("missing-max-transition-epoch", Location(1), Position(4, 1))


def test_a_max_transition_epoch_that_does_not_increase_warns() -> None:
    text = HEAD + "  max_transition_epoch: 3\n1:\n  params: [model.norm.weight]\n  max_transition_epoch: 3\n"
    found = only(text)
    assert (found.code, found.severity, found.location, found.position) == (
        "max-transition-epoch-not-increasing",
        Severity.WARNING,
        Location(1, "max_transition_epoch"),
        Position(6, 3),
    )


def test_an_lr_in_phase_0_is_ignored_with_a_warning() -> None:
    found = only(HEAD + "  lr: 0.1\n")
    assert (found.code, found.severity, found.location, found.position) == (
        "lr-in-phase-0",
        Severity.WARNING,
        Location(0, "lr"),
        Position(3, 3),
    )
    assert resolved(HEAD + "  lr: 0.1\n").phases[0].lr is None


@pytest.mark.parametrize("lr", ["0", "-1.0e-5", ".inf", ".nan"])
def test_an_lr_must_be_positive_and_finite(lr: str) -> None:
    found = only(HEAD + f"1:\n  params: [model.norm.weight]\n  lr: {lr}\n")
    assert (found.code, found.location, found.position) == ("invalid-lr", Location(1, "lr"), Position(5, 3))


def test_reinitialisation_in_phase_0() -> None:
    text = HEAD + "  new_optimizer:\n    optimizer_init: {class_path: torch.optim.SGD}\n"
    found = only(text)
    assert (found.code, found.location, found.position) == (
        "reinit-in-phase-0",
        Location(0, "new_optimizer"),
        Position(3, 3),
    )


def _lr_scheduler(cfg: str) -> str:
    return (
        HEAD + "1:\n  params: [model.norm.weight]\n  new_lr_scheduler:\n"
        "    lr_scheduler_init: {class_path: torch.optim.lr_scheduler.StepLR}\n"
        f"    pl_lrs_cfg: {cfg}\n"
    )


def test_an_unknown_lightning_scheduler_key() -> None:
    found = only(_lr_scheduler("{interval: epoch, frequncy: 2}"))
    assert (found.code, found.location, found.position) == (
        "invalid-value",
        Location(1, "new_lr_scheduler", subpath=("pl_lrs_cfg",)),
        Position(7, 5),
    )
    assert "['frequncy']" in found.message


def test_a_scheduler_interval_must_be_epoch_or_step() -> None:
    found = only(_lr_scheduler("{interval: batch}"))
    assert (found.code, found.location, found.position) == (
        "invalid-value",
        Location(1, "new_lr_scheduler", subpath=("pl_lrs_cfg",)),
        Position(7, 5),
    )
    assert found.message == "interval must be 'epoch' or 'step', got 'batch'"


def test_an_empty_phase() -> None:
    found = only(HEAD + "1:\n  params: []\n")
    assert (found.code, found.location, found.position) == ("empty-phase", Location(1, "params"), Position(4, 3))


def test_a_schedule_without_phases() -> None:
    (found,) = validate(Schedule(()), INVENTORY, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)).failure()
    assert (found.code, found.location) == ("schedule-empty", Location())


@pytest.mark.parametrize(
    "options",
    [ValidationOptions(base_max_lr=0.0), ValidationOptions(base_max_lr=math.nan), ValidationOptions(max_depth=-2)],
    ids=["zero-base-lr", "nan-base-lr", "max-depth-below-minus-one"],
)
def test_invalid_options(options: ValidationOptions) -> None:
    schedule = Schedule((Phase((".*",)),))
    (found,) = validate(schedule, INVENTORY, options).failure()
    assert (found.code, found.location) == ("invalid-option", Location())


def test_unscheduled_parameters_warn_by_default() -> None:
    (found,) = check(HEAD, ValidationOptions())
    assert (found.code, found.severity, found.location, found.position) == (
        "unscheduled-params",
        Severity.WARNING,
        Location(),
        Position(1, 1),
    )
    assert found.message.startswith(f"{len(NAMES) - 2} parameter(s) are never thawed by any phase: model.embed.weight")


def test_unscheduled_parameters_can_be_an_error_or_ignored() -> None:
    (found,) = check(HEAD, ValidationOptions(unscheduled=UnscheduledPolicy.ERROR))
    assert (found.code, found.severity) == ("unscheduled-params", Severity.ERROR)
    assert check(HEAD, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)) == ()


# --- FTS matching semantics -----------------------------------------------------------------------------------


def test_an_exact_name_wins_over_its_reading_as_a_regex() -> None:
    # As a regex, "a.b" would also match "a.bc" and "aXb"; as the exact name of a parameter it is only that one.
    inventory = ParamInventory.from_names(["a.b", "a.bc", "aXb"])
    result = validate(Schedule((Phase(("a.b",)), Phase(("a.b.",)))), inventory).unwrap()
    assert [p.names for p in result.phases] == [("a.b",), ("a.bc",)]
    assert result.unscheduled == ("aXb",)


def test_a_regex_is_anchored_at_the_start_only() -> None:
    inventory = ParamInventory.from_names(["encoder.weight", "decoder.weight", "weight"])
    result = validate(Schedule((Phase(("weight",)), Phase(("de",)))), inventory).unwrap()
    assert [p.names for p in result.phases] == [("weight",), ("decoder.weight",)]


def test_a_regex_must_match_at_the_start_even_where_it_would_match_later() -> None:
    inventory = ParamInventory.from_names(["ln.bias", "ln.bias.ln"])
    result = validate(Schedule((Phase(("ln.*s$",)), Phase(("ln.bias.ln",)))), inventory).unwrap()
    assert result.phases[0].names == ("ln.bias",)


def test_an_unescaped_dot_matches_any_character() -> None:
    inventory = ParamInventory.from_names(["layers.10.w", "layers.2.w", "layersX1Yw"])
    result = validate(Schedule((Phase(("layers.2.w",)), Phase(("layers.1.*",)))), inventory).unwrap()
    assert result.phases[1].names == ("layers.10.w", "layersX1Yw")


def test_an_alternation_matches_either_side() -> None:
    inventory = ParamInventory.from_names(["body.weight", "classifier.weight", "classifier.bias", "head.weight"])
    result = validate(Schedule((Phase(("head|classifier.*",)), Phase(("body.weight",)))), inventory).unwrap()
    assert result.phases[0].names == ("classifier.weight", "classifier.bias", "head.weight")


def test_a_regex_with_a_quantifier_right_after_the_first_characters() -> None:
    inventory = ParamInventory.from_names(["ab", "abb", "a", "ac", "b"])
    result = validate(Schedule((Phase(("ab*$",)), Phase(("ac|b",)))), inventory).unwrap()
    assert [p.names for p in result.phases] == [("ab", "abb", "a"), ("ac", "b")]


# --- resolution -----------------------------------------------------------------------------------------------


def test_the_resolved_schedule_applies_defaults_and_keeps_the_order_entries_are_written() -> None:
    text = (
        "0:\n  params: [head.bias, head.weight]\n  max_transition_epoch: 2\n"
        "1:\n  params: ['model.layers.1[01].mlp.*', model.norm.weight]\n"
        "2:\n  params: ['model.layers.[0-9]\\.', model.embed.weight]\n  lr: 3.0e-4\n  max_transition_epoch: 7\n"
        "3:\n  params: ['model.layers.1[01].attn.*']\n"
    )
    result = resolved(text, ValidationOptions(base_max_lr=1e-3, max_depth=2))
    assert result.phases[0].names == ("head.bias", "head.weight")  # as written, like FTS's expanded schedule
    assert result.phases[1].names == (  # a regex's matches in registration order
        "model.layers.10.mlp.weight",
        "model.layers.10.mlp.bias",
        "model.layers.11.mlp.weight",
        "model.layers.11.mlp.bias",
        "model.norm.weight",
    )
    assert result.phases[2].names[-1] == "model.embed.weight"
    assert len(result.phases[2].names) == 1 + 10 * 3
    assert [p.lr for p in result.phases] == [None, 1e-3, 3e-4, 1e-3]
    assert [p.max_transition_epoch for p in result.phases] == [2, -1, 7, -1]
    assert (result.max_depth, result.epoch_watermark, result.unscheduled, result.warnings) == (2, 7, (), ())
    assert result.names_through(0) == ("head.bias", "head.weight")


@pytest.mark.parametrize(("max_depth", "expected"), [(-1, 1), (0, 0), (1, 1), (99, 1)])
def test_max_depth_is_clamped_to_the_schedule(max_depth: int, expected: int) -> None:
    schedule = Schedule((Phase(("head.*",)), Phase(("model.*",))))
    assert validate(schedule, INVENTORY, ValidationOptions(max_depth=max_depth)).unwrap().max_depth == expected


def test_reinitialisation_directives_are_carried_to_the_resolved_phase() -> None:
    optimizer = OptimizerInit(ClassInit("torch.optim.AdamW", {"weight_decay": 0.0}))
    scheduler = LRSchedulerInit(ClassInit("torch.optim.lr_scheduler.StepLR", {"step_size": 1}), {"interval": "step"})
    schedule = Schedule((Phase(("head.*",)), Phase(("model.*",), new_optimizer=optimizer, new_lr_scheduler=scheduler)))
    phase = validate(schedule, INVENTORY).unwrap().phases[1]
    assert (phase.new_optimizer, phase.new_lr_scheduler) == (optimizer, scheduler)


def test_warnings_travel_with_a_successful_result() -> None:
    result = resolved(HEAD + "  lr: 0.1\n1:\n  params: ['model.layers.1.*']\n", ValidationOptions())
    assert [d.code for d in result.warnings] == ["lr-in-phase-0", "regex-overmatch", "unscheduled-params"]
    assert errors_only(result.warnings) == ()


def test_every_problem_is_reported_at_once_in_reading_order() -> None:
    text = (
        "0:\n  params: [head.weight, missing.weight]\n  lr: 0.1\n"
        "1:\n  params: ['(', head.weight]\n  lr: -1\n  max_transition_epoch: -5\n"
        "2:\n  params: []\n"
    )
    found = check(text, ValidationOptions(unscheduled=UnscheduledPolicy.ERROR))
    assert [(d.code, d.location.phase, d.position.line if d.position else None) for d in found] == [
        ("no-match", 0, 2),
        ("lr-in-phase-0", 0, 3),
        ("invalid-regex", 1, 5),
        ("param-in-several-phases", 1, 5),
        ("invalid-max-transition-epoch", 1, 7),
        ("invalid-lr", 1, 6),
        ("empty-phase", 2, 9),
        ("unscheduled-params", None, 1),
    ]
    assert len(errors_only(found)) == 7 and len(warnings_only(found)) == 1


def test_validate_a_structured_schedule_keeps_positions() -> None:
    raw = parse_yaml(HEAD + "1:\n  params: [nothing.here]\n", "s.yaml").unwrap()
    schedule = structure_schedule(raw).unwrap()
    (found,) = validate(schedule, INVENTORY, ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE)).failure()
    assert found.render().startswith("s.yaml:4:12: error[no-match] phase 1 › params[0]: 'nothing.here' did not match")


def test_unsupported_reinit_blocks_are_reported_with_every_other_error() -> None:
    text = (
        "0:\n  params: [head.weight, head.bias]\n"
        "1:\n  params: [no.such.param]\n  new_optimizer:\n    optimizer_init: {class_path: torch.optim.AdamW}\n"
        "  new_lr_scheduler:\n    lr_scheduler_init: {class_path: torch.optim.lr_scheduler.StepLR}\n"
    )
    options = ValidationOptions(unscheduled=UnscheduledPolicy.IGNORE, reinit_supported=False)
    found = [(d.code, d.location.key, d.position.line if d.position else None) for d in check(text, options)]
    assert found == [
        ("no-match", "params", 4),
        ("unsupported-reinit", "new_optimizer", 5),
        ("unsupported-reinit", "new_lr_scheduler", 7),
    ]
    assert [d.code for d in check(text)] == ["no-match"]  # supported by default: only the missing parameter
