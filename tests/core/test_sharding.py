"""The core's sharding decisions: resolving an ``fsdp_plan``, flat-parameter splits and split ties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from finetuning_scheduler.core import Location, flat_parameter_conflicts, plan_sharding, split_ties, units_of

MODULES = ["model", "model.blocks", "model.blocks.0", "model.blocks.1", "model.head", "model.blocks.0.fc"]


def test_plan_keys_are_names_or_regexes_and_directives_run_bottom_up() -> None:
    plan = plan_sharding({"model": {"a": 1}, r"model\.blocks\.\d+$": {}}, {"a": 0, "b": 2}, MODULES, ["model.blocks"])
    directives = plan.unwrap().directives
    assert [d.module for d in directives] == ["model.blocks.0", "model.blocks.1", "model"]
    assert dict(directives[-1].kwargs) == {"a": 1, "b": 2}  # the key's own arguments over the defaults
    assert dict(directives[0].kwargs) == {"a": 0, "b": 2}


def test_every_bad_plan_key_is_reported_at_once_with_its_place() -> None:
    problems = plan_sharding({"nothing": {}, "model.(": {}, "model.head": {}}, None, MODULES).failure()
    assert [(p.code, str(p.location)) for p in problems] == [
        ("fsdp-plan-no-match", "fsdp_plan.nothing"),
        ("invalid-regex", "fsdp_plan.model.("),
    ]


def test_containers_and_doubly_matched_modules_are_warnings() -> None:
    plan = plan_sharding(
        {r"model\.blocks$": {}, r"model\.blocks\.0$": {"x": 1}, "model.blocks.0": {}}, None, MODULES, ["model.blocks"]
    ).unwrap()
    assert plan.modules == ("model.blocks.0",)
    assert [note.code for note in plan.notes] == ["fsdp-plan-container", "fsdp-plan-overlap"]
    assert dict(plan.directives[0].kwargs) == {"x": 1}  # the first key wins


def test_a_unit_split_between_phases_or_left_unscheduled_is_an_error_at_its_latest_phase() -> None:
    units = units_of(["a.0.w", "a.0.b", "a.1.w", "head.w"], ["a.0", "a.1"])
    assert units == {"a.0.w": "a.0", "a.0.b": "a.0", "a.1.w": "a.1", "head.w": ""}
    assert flat_parameter_conflicts(units, [["head.w"], ["a.1.w"], ["a.0.w", "a.0.b"]]) == ()
    split = flat_parameter_conflicts(units, [["head.w", "a.0.w"], ["a.1.w"], ["a.0.b"]])
    assert [(p.code, p.location) for p in split] == [("fsdp-flat-param-split", Location(2, "params"))]
    assert "phase 0: a.0.w; phase 2: a.0.b" in split[0].message and "use_orig_params=True" in (split[0].hint or "")
    frozen = flat_parameter_conflicts(units, [["head.w", "a.1.w"], ["a.0.w"]], unscheduled=["a.0.b"])
    assert "never thawed (unscheduled): a.0.b" in frozen[0].message


def test_tied_parameters_sharded_apart_are_reported() -> None:
    units = {"wte.weight": "", "lm_head.weight": "lm_head"}
    problems = split_ties(units, {"lm_head.weight": "wte.weight"})
    assert [p.code for p in problems] == ["fsdp-split-tie"] and "'lm_head.weight' is tied to 'wte.weight'" in problems[
        0
    ].message


names = st.lists(st.from_regex(r"[a-c](\.[0-2]){0,2}\.w", fullmatch=True), unique=True, min_size=1, max_size=12)


@given(names, st.data())
def test_a_phase_per_unit_never_conflicts_and_moving_one_parameter_out_always_does(
    params: list[str], data: st.DataObject
) -> None:
    modules = sorted({name.rpartition(".")[0] for name in params})
    units = data.draw(st.lists(st.sampled_from(modules), unique=True))
    owner = units_of(params, units)
    by_unit: dict[str, list[str]] = {}
    for param, unit in owner.items():
        by_unit.setdefault(unit, []).append(param)
    phases = list(by_unit.values())
    assert flat_parameter_conflicts(owner, phases) == ()
    crowded = [unit_params for unit_params in phases if len(unit_params) > 1]
    if crowded:
        moved = crowded[0][-1]
        split = [[p for p in phase if p != moved] for phase in phases] + [[moved]]
        assert len(flat_parameter_conflicts(owner, split)) == 1


def test_an_empty_key_or_a_value_that_is_not_a_mapping_is_a_located_error() -> None:
    problems = plan_sharding({"": {}, "model": ["reshard"]}, None, MODULES).failure()  # type: ignore[dict-item]
    assert [(p.code, str(p.location)) for p in problems] == [
        ("fsdp-plan-key", "fsdp_plan."),
        ("fsdp-plan-value", "fsdp_plan.model"),
    ]
