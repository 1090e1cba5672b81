"""Properties of the core over generated models and schedules (strategies from `finetuning_scheduler.testing`)."""

from __future__ import annotations

import re
from collections import Counter
from random import Random

from hypothesis import given
from hypothesis import strategies as st

from finetuning_scheduler.core import (
    Diagnostics,
    GenerationPolicy,
    ParamInventory,
    ResolvedSchedule,
    Schedule,
    UnscheduledPolicy,
    ValidationOptions,
    dump_schedule,
    errors_only,
    generate,
    parse_yaml,
    resolve_yaml,
    structure_leniently,
    structure_schedule,
    validate,
)
from finetuning_scheduler.core._yaml import RawSchedule
from finetuning_scheduler.testing import (
    inventories,
    inventory_and_schedule,
    schedules,
    schedules_over,
    yaml_values,
)

STRICT = ValidationOptions(unscheduled=UnscheduledPolicy.ERROR)


def inventory_with_schedule_over() -> st.SearchStrategy[tuple[ParamInventory, Schedule]]:
    return inventories().flatmap(lambda inventory: schedules_over(inventory).map(lambda s: (inventory, s)))


def fts_reading(entry: str, inventory: ParamInventory) -> set[str]:
    """What FTS thaws for one entry: the exact name, nothing for a tied alias, else every `re.match` of it."""
    if entry in inventory.names:
        return {entry}
    try:
        pattern = re.compile(entry)
    except re.error:
        return set()
    return set() if entry in inventory.aliases else {name for name in inventory.names if pattern.match(name)}


def thawed(resolved: ResolvedSchedule) -> list[str]:
    return [name for phase in resolved.phases for name in phase.names]


def summary(diagnostics: Diagnostics) -> Counter[tuple[str, object, object]]:
    """What a diagnostic says independently of the order names are listed in: code, severity, location."""
    return Counter((d.code, d.severity, d.location) for d in diagnostics)


# --- a schedule cut from a permutation of the names always validates -----------------------------------------


@given(inventory_and_schedule())
def test_a_schedule_cut_from_a_permutation_of_the_names_always_validates(
    pair: tuple[ParamInventory, Schedule],
) -> None:
    inventory, schedule = pair
    resolved = validate(schedule, inventory, STRICT).unwrap()
    for written, phase in zip(schedule.phases, resolved.phases, strict=True):
        assert phase.names == written.params, "exact names resolve to themselves, in the order written (as FTS)"
        assert phase.max_transition_epoch == written.max_transition_epoch
    assert resolved.unscheduled == ()
    assert errors_only(resolved.warnings) == ()
    assert resolved.max_depth == len(schedule.phases) - 1
    assert resolved.epoch_watermark == max(phase.max_transition_epoch for phase in schedule.phases)
    assert resolved.phases[0].lr is None
    assert all(
        phase.lr == (written.lr or 1e-5)
        for written, phase in zip(schedule.phases[1:], resolved.phases[1:], strict=True)
    )


# --- every parameter of a resolved schedule is thawed exactly once -------------------------------------------


@given(inventory_with_schedule_over())
def test_every_parameter_of_a_resolved_schedule_is_thawed_exactly_once(
    pair: tuple[ParamInventory, Schedule],
) -> None:
    inventory, schedule = pair
    result = validate(schedule, inventory)
    if not isinstance(result.value_or(None), ResolvedSchedule):
        # The schedule was refused: then something in it really is wrong.
        assert errors_only(result.failure())
        return
    resolved = result.unwrap()
    names = thawed(resolved)
    assert all(count == 1 for count in Counter(names).values())
    assert set(names).isdisjoint(resolved.unscheduled)
    assert sorted([*names, *resolved.unscheduled]) == sorted(inventory.names)


@given(inventory_with_schedule_over())
def test_resolution_agrees_with_fts_entry_by_entry(pair: tuple[ParamInventory, Schedule]) -> None:
    # A reference model: FTS's reading of each entry, phase by phase. The schedule is refused for overlapping
    # phases exactly when that reading overlaps; when it is accepted, each phase thaws exactly what FTS would.
    inventory, schedule = pair
    per_phase = [set().union(*(fts_reading(e, inventory) for e in phase.params)) for phase in schedule.phases]
    overlapping = sum(len(names) for names in per_phase) != len(set().union(*per_phase))
    result = validate(schedule, inventory)
    resolved = result.value_or(None)
    if isinstance(resolved, ResolvedSchedule):
        assert not overlapping
        assert [set(phase.names) for phase in resolved.phases] == per_phase
    else:
        assert overlapping == ("param-in-several-phases" in {d.code for d in result.failure()})


@given(st.sampled_from(list(GenerationPolicy)), inventories())
def test_a_generated_schedule_thaws_every_parameter_once(policy: GenerationPolicy, inventory: ParamInventory) -> None:
    resolved = validate(generate(inventory, policy), inventory, STRICT).unwrap()
    assert sorted(thawed(resolved)) == sorted(inventory.names)
    if policy is GenerationPolicy.FTS:
        assert thawed(resolved) != [] and [n for p in generate(inventory).phases for n in p.params] == list(
            reversed(inventory.names)
        )


# --- validation does not depend on the order of the inventory ------------------------------------------------


@given(inventory_with_schedule_over(), st.randoms(use_true_random=False))
def test_validation_does_not_depend_on_the_order_of_the_inventory(
    pair: tuple[ParamInventory, Schedule], rng: Random
) -> None:
    inventory, schedule = pair
    shuffled_names = list(inventory.names)
    rng.shuffle(shuffled_names)
    shuffled = ParamInventory.from_names(shuffled_names, aliases=inventory.aliases)
    first, second = validate(schedule, inventory), validate(schedule, shuffled)
    if isinstance(first.value_or(None), ResolvedSchedule):
        one, two = first.unwrap(), second.unwrap()
        assert [set(p.names) for p in one.phases] == [set(p.names) for p in two.phases]
        assert [(p.lr, p.max_transition_epoch) for p in one.phases] == [
            (p.lr, p.max_transition_epoch) for p in two.phases
        ]
        assert set(one.unscheduled) == set(two.unscheduled)
        assert (one.max_depth, one.epoch_watermark) == (two.max_depth, two.epoch_watermark)
        assert summary(one.warnings) == summary(two.warnings)
    else:
        assert summary(first.failure()) == summary(second.failure())


# --- YAML round trip -------------------------------------------------------------------------------------------


@given(schedules())
def test_yaml_round_trip(schedule: Schedule) -> None:
    text = dump_schedule(schedule)
    assert parse_yaml(text).bind(structure_schedule).unwrap() == schedule
    assert dump_schedule(parse_yaml(text).bind(structure_schedule).unwrap()) == text, "the dump is stable"


@given(inventory_and_schedule())
def test_a_dumped_valid_schedule_resolves_from_yaml_as_it_validates(pair: tuple[ParamInventory, Schedule]) -> None:
    inventory, schedule = pair
    from_yaml = resolve_yaml(dump_schedule(schedule), inventory, STRICT).unwrap()
    assert from_yaml.phases == validate(schedule, inventory, STRICT).unwrap().phases


# --- robustness: whatever comes in, a Result comes out ------------------------------------------------------------


@given(st.text(max_size=200))
def test_any_text_parses_or_fails_with_a_diagnostic(text: str) -> None:
    result = parse_yaml(text, "s.yaml")
    if not isinstance(result.value_or(None), RawSchedule):
        assert all(d.code in ("yaml-syntax", "duplicate-key") and d.source == "s.yaml" for d in result.failure())


@given(st.dictionaries(st.one_of(st.integers(-1, 4), st.text(max_size=3)), yaml_values(), max_size=4))
def test_any_plain_data_structures_or_reports_every_problem(data: dict[object, object]) -> None:
    schedule, problems = structure_leniently(RawSchedule(data))
    assert isinstance(schedule, Schedule)
    assert all(d.is_error for d in problems)


@given(inventories(), schedules())
def test_any_schedule_against_any_model_gives_a_result(inventory: ParamInventory, schedule: Schedule) -> None:
    result = validate(schedule, inventory)
    resolved = result.value_or(None)
    assert isinstance(resolved, ResolvedSchedule) or errors_only(result.failure())
