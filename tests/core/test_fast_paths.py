"""The core's fast paths give exactly what the general paths give: the schedule writer against PyYAML's dumper,
and a generated schedule's raw form against structuring its data again."""

from __future__ import annotations

import gc

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from finetuning_scheduler.core import (
    ParamInventory,
    Phase,
    PlainPhases,
    Schedule,
    ValidationOptions,
    dump_data,
    dump_schedule,
    generate,
    parse_yaml,
)
from finetuning_scheduler.core._structure import structure_leniently
from finetuning_scheduler.core._validate import diagnose
from finetuning_scheduler.core._yaml import RawSchedule, _dump_data, schedule_to_data
from finetuning_scheduler.testing import schedules

# Names that look like parameter names, and the words and shapes YAML reads as something else.
TRICKY = ["yes", "No", "on", "OFF", "true", "Null", "~", "null.x", "y", "1e3", "0x1F", ".inf", "a b", "a:b", "#x", "-a"]
names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}(\.[A-Za-z0-9_]{1,6}){0,4}", fullmatch=True),
    st.sampled_from(TRICKY),
    st.text(max_size=12),
    st.text(alphabet="ab.", min_size=95, max_size=110),  # around the emitter's line width
)
options = st.dictionaries(
    st.sampled_from(["max_transition_epoch", "lr", "new_optimizer", "true", "a b"]),
    st.one_of(st.integers(-3, 10**12), st.booleans(), st.floats(allow_nan=False), st.none()),
    max_size=2,
)
phase_data = st.builds(lambda params, extra: {"params": params, **extra}, st.lists(names, max_size=6), options)


@given(st.lists(phase_data, min_size=1, max_size=5))
@example([{"params": ["yes", "model.layers.0.weight"]}, {"params": []}, {"params": ["x"], "max_transition_epoch": 3}])
def test_the_fast_writer_writes_what_the_dumper_writes(phases: list[dict[str, object]]) -> None:
    data = dict(enumerate(phases))
    assert dump_data(data) == _dump_data(data)
    assert yaml.safe_load(dump_data(data)) == data


@given(schedules())
def test_dump_schedule_is_the_dumper_s_text_of_its_data(schedule: Schedule) -> None:
    assert dump_schedule(schedule) == _dump_data(schedule_to_data(schedule))


@given(schedules())
def test_a_schedule_s_raw_form_structures_to_the_schedule_without_structuring(schedule: Schedule) -> None:
    raw = RawSchedule.of(schedule, "generated.yaml")
    shortcut, problems = structure_leniently(raw)
    structured, structural = structure_leniently(RawSchedule(raw.data, raw.source))
    assert problems == () and structural == ()
    assert shortcut == structured == schedule
    assert shortcut.source.file == "generated.yaml"


def test_a_generated_schedule_of_many_parameters_reads_back_from_its_text() -> None:
    inventory = ParamInventory.from_names(
        [f"model.layers.{i}.mlp.experts.{j}.weight" for i in range(4) for j in range(50)]
    )
    schedule = generate(inventory)
    text = dump_schedule(schedule)
    assert text == _dump_data(schedule_to_data(schedule))
    assert Schedule(tuple(Phase(tuple(p["params"])) for p in parse_yaml(text).unwrap().data.values())) == schedule


# Entries that exercise every path of validation: exact names, regexes, a name given twice, strangers, no entries.
entries = st.lists(st.sampled_from(["a.w", "a.b", "b.w", "b.b", "c.w", "a\\..*", "b.*", "zz", "("]), max_size=3)


@given(st.lists(entries.map(tuple), min_size=1, max_size=5))
def test_plain_phases_validate_as_the_same_phases_as_records(params: list[tuple[str, ...]]) -> None:
    inventory = ParamInventory.from_names(["a.w", "a.b", "b.w", "b.b", "c.w"])
    columns, records = PlainPhases(params), tuple(Phase(p) for p in params)
    assert columns == records and list(columns) == list(records) and columns[1:] == records[1:]
    assert diagnose(Schedule(columns), inventory, ValidationOptions()) == diagnose(
        Schedule(records), inventory, ValidationOptions()
    )


def test_a_generated_schedule_leaves_the_garbage_collector_nothing_per_phase() -> None:
    # The 50k phase records of a 100k-tensor model's schedule once set off an extra full collection mid-fit.
    schedule = generate(ParamInventory.from_names([f"layers.{i}.weight" for i in range(1000)]))
    assert isinstance(schedule.phases, PlainPhases) and len(schedule.phases) == 500
    gc.collect()  # the collector untracks tuples that hold only strings when it first meets them
    assert not any(gc.is_tracked(params) for params in schedule.phases.params)
