"""Name maps: building, translating names and schedules, checkpoint keys; bijections where they are claimed."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from finetuning_scheduler.core import (
    LEADING_WRAPPERS,
    ONE_TO_ONE,
    WRAPPER_COMPONENTS,
    Binding,
    BindingKind,
    Direction,
    FusedPolicy,
    NameMap,
    ParamInventory,
    Phase,
    Schedule,
    Severity,
    UnscheduledPolicy,
    ValidationOptions,
    build_name_map,
    generate_in_view,
    identity_map,
    rename_keys,
    resolve_in_view,
    strip_wrappers,
    to_canonical,
    to_view,
    unwrapped_name_map,
    validate,
    view_inventory,
)

EXACT, ALIAS, FUSED, TIED, SYNTHETIC, PREFIX = (
    BindingKind.EXACT,
    BindingKind.ALIAS,
    BindingKind.FUSED,
    BindingKind.TIED,
    BindingKind.SYNTHETIC,
    BindingKind.PREFIX,
)

# A small GPT-2-like model: a fused qkv tensor, a tied embedding/unembedding, a synthetic bias, a passthrough head.
CANONICAL = ("gpt.wte", "gpt.h.0.c_attn", "gpt.h.0.mlp", "gpt.h.1.c_attn", "gpt.h.1.mlp", "score.weight")
BINDINGS = (
    Binding.of("embed.W_E", "gpt.wte", ALIAS),
    *(Binding.of(f"blocks.{i}.attn.W_{p}", f"gpt.h.{i}.c_attn", FUSED) for i in (0, 1) for p in "QKV"),
    *(Binding.of(f"blocks.{i}.mlp.W_in", f"gpt.h.{i}.mlp", ALIAS) for i in (0, 1)),
    Binding.of("unembed.W_U", "gpt.wte", TIED),
    Binding.of("unembed.b_U", None, SYNTHETIC),
)
INVENTORY = ParamInventory.from_names(CANONICAL)


@pytest.fixture
def tl_map() -> NameMap:
    return build_name_map(CANONICAL, BINDINGS).unwrap()


def resolve(
    phases: list[list[str]], name_map: NameMap, fused: FusedPolicy = FusedPolicy.ERROR, **options: object
) -> object:
    raw = {i: {"params": params} for i, params in enumerate(phases)}
    return resolve_in_view(raw, INVENTORY, name_map, ValidationOptions(**options), fused)  # type: ignore[arg-type]


def codes(result: object) -> list[str]:
    return [d.code for d in result.failure()]  # type: ignore[attr-defined]


# -- building -------------------------------------------------------------------------------------------------------


def test_build_completes_with_passthrough_names(tl_map: NameMap) -> None:
    assert tl_map.views[-1] == "score.weight"
    assert tl_map.by_view["score.weight"].kind is EXACT
    assert "unembed.b_U" not in tl_map.views  # synthetic: a name, but nothing to thaw
    assert tl_map.siblings("gpt.wte") == ("embed.W_E", "unembed.W_U")
    assert tl_map.siblings("gpt.h.0.c_attn") == ("blocks.0.attn.W_Q", "blocks.0.attn.W_K", "blocks.0.attn.W_V")


def test_build_without_passthrough_leaves_other_params_out() -> None:
    name_map = build_name_map(CANONICAL, BINDINGS, passthrough=False).unwrap()
    assert "score.weight" not in name_map.by_view


@pytest.mark.parametrize(
    ("bindings", "hidden", "expected"),
    [
        ([Binding.of("a", "nope", ALIAS)], (), ["name-map-unknown-param"]),
        ([Binding.of("a", "gpt.wte", ALIAS), Binding.of("a", "gpt.h.0.mlp", ALIAS)], (), ["name-map-duplicate"]),
        ([Binding.of("a", "gpt.wte", ALIAS), Binding.of("b", "gpt.wte", ALIAS)], (), ["name-map-not-injective"]),
        ([Binding.of("a", "gpt.wte", FUSED), Binding.of("b", "gpt.wte", ALIAS)], (), ["name-map-mixed"]),
        ([Binding.of("a", "gpt.wte", ALIAS)], ("gpt.wte",), ["name-map-hidden-bound"]),
        ([], ("missing",), ["name-map-unknown-param"]),
        ([Binding.of("score.weight", "gpt.wte", ALIAS)], (), ["name-map-duplicate"]),  # clashes with a passthrough
    ],
)
def test_inconsistent_maps_are_reported(bindings: list[Binding], hidden: tuple[str, ...], expected: list[str]) -> None:
    assert [d.code for d in build_name_map(CANONICAL, bindings, hidden).failure()] == expected


def test_malformed_bindings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="synthetic"):
        Binding.of("x", None, ALIAS)
    with pytest.raises(ValueError, match="synthetic"):
        Binding.of("x", "y", SYNTHETIC)


def test_hidden_names_are_out_of_schedule_space() -> None:
    name_map = build_name_map(CANONICAL, [], hidden=["score.weight"]).unwrap()
    assert "score.weight" not in name_map.views
    assert name_map.hidden == ("score.weight",)


# -- translating names ----------------------------------------------------------------------------------------------


def test_to_canonical_dedups_tied_names(tl_map: NameMap) -> None:
    assert to_canonical(["embed.W_E", "unembed.W_U", "score.weight"], tl_map).unwrap() == ("gpt.wte", "score.weight")


def test_partial_fused_tensor_is_an_error_that_explains_why(tl_map: NameMap) -> None:
    (problem,) = to_canonical(["blocks.0.attn.W_Q"], tl_map).failure()
    assert problem.code == "fused-partial"
    assert "blocks.0.attn.W_K, blocks.0.attn.W_V" in problem.message and "thawed whole" in problem.message
    assert problem.hint is not None and "fused='widen'" in problem.hint


def test_widening_thaws_the_whole_fused_tensor(tl_map: NameMap) -> None:
    assert to_canonical(["blocks.0.attn.W_Q"], tl_map, FusedPolicy.WIDEN).unwrap() == ("gpt.h.0.c_attn",)


def test_unknown_and_synthetic_names_are_errors(tl_map: NameMap) -> None:
    assert codes(to_canonical(["nope", "unembed.b_U"], tl_map)) == ["name-unknown", "name-synthetic"]


def test_to_view_gives_every_name_of_a_tensor_for_logs(tl_map: NameMap) -> None:
    assert to_view(["gpt.h.1.c_attn"], tl_map) == ("blocks.1.attn.W_Q", "blocks.1.attn.W_K", "blocks.1.attn.W_V")
    assert to_view(["gpt.wte", "unmapped.name"], tl_map) == ("embed.W_E", "unembed.W_U", "unmapped.name")


def test_view_inventory_splits_fused_sizes_only() -> None:
    inventory = ParamInventory(CANONICAL, (6, 9, 4, 9, 4, 2), ((6,),) * 6, ("float32",) * 6, ("",) * 6)
    views = view_inventory(inventory, build_name_map(CANONICAL, BINDINGS).unwrap())
    sizes = dict(zip(views.names, views.numels, strict=True))
    assert (sizes["embed.W_E"], sizes["unembed.W_U"], sizes["blocks.0.attn.W_K"], sizes["score.weight"]) == (6, 6, 3, 2)


def test_view_inventory_keeps_tied_aliases_pointing_at_schedule_names() -> None:
    inventory = ParamInventory.from_names(CANONICAL, aliases={"lm_head.weight": "gpt.wte"})
    views = view_inventory(inventory, build_name_map(CANONICAL, BINDINGS).unwrap())
    assert dict(views.aliases) == {"lm_head.weight": "embed.W_E"}


# -- translating schedules ------------------------------------------------------------------------------------------


def test_schedule_in_view_names_translates_to_canonical(tl_map: NameMap) -> None:
    out = resolve([["score.*", "unembed.*"], ["blocks.1.*"], ["blocks.0.*"]], tl_map).unwrap()
    assert [p.names for p in out.canonical.phases] == [
        ("gpt.wte", "score.weight"),
        ("gpt.h.1.c_attn", "gpt.h.1.mlp"),
        ("gpt.h.0.c_attn", "gpt.h.0.mlp"),
    ]
    # The schedule-space phase lists what is thawed: both names of the tied embedding (W_E comes with W_U).
    assert out.view.phases[0].names == ("embed.W_E", "unembed.W_U", "score.weight")
    assert out.view.unscheduled == out.canonical.unscheduled == ()
    assert out.view.schedule == out.canonical.schedule


def test_tied_names_in_two_phases_are_an_error(tl_map: NameMap) -> None:
    result = resolve([["unembed.W_U", "score.weight"], ["blocks.*"], ["embed.W_E"]], tl_map)
    (problem,) = result.failure()
    assert (problem.code, problem.location.phase) == ("param-in-several-phases", 2)
    assert "'gpt.wte'" in problem.message


def test_fused_parts_in_two_phases_are_an_error_whatever_the_policy(tl_map: NameMap) -> None:
    phases = [["score.*", "unembed.*", "blocks.0.attn.W_Q"], ["blocks.0.attn.W_[KV]", "blocks.0.mlp.*"], ["blocks.1.*"]]
    for fused in FusedPolicy:
        assert codes(resolve(phases, tl_map, fused)) == ["param-in-several-phases"]


def test_partial_fused_phase_is_an_error_by_default_and_a_warning_when_widened(tl_map: NameMap) -> None:
    phases = [["score.*", "unembed.*", "blocks.0.attn.W_Q"], ["blocks.0.mlp.*", "blocks.1.*"]]
    assert codes(resolve(phases, tl_map)) == ["fused-partial"]
    widened = resolve(phases, tl_map, FusedPolicy.WIDEN).unwrap()
    assert [(d.code, d.severity) for d in widened.view.warnings] == [("fused-widened", Severity.WARNING)]
    assert widened.canonical.phases[0].names == ("gpt.wte", "gpt.h.0.c_attn", "score.weight")
    assert "blocks.0.attn.W_K" in widened.view.phases[0].names
    # Widened parts are thawed: no "never thawed" warning about them.
    assert widened.view.unscheduled == ()


def test_unscheduled_is_judged_in_canonical_space(tl_map: NameMap) -> None:
    out = resolve([["score.*", "unembed.W_U"]], tl_map).unwrap()
    assert out.canonical.unscheduled == ("gpt.h.0.c_attn", "gpt.h.0.mlp", "gpt.h.1.c_attn", "gpt.h.1.mlp")
    (warned,) = out.view.warnings
    assert warned.code == "unscheduled-params" and "blocks.0.attn.W_Q" in warned.message
    strict = resolve([["score.*", "unembed.W_U"]], tl_map, unscheduled=UnscheduledPolicy.ERROR)
    assert codes(strict) == ["unscheduled-params"]


def test_hidden_names_are_never_reported_unscheduled() -> None:
    name_map = build_name_map(CANONICAL, [Binding.of("W_E", "gpt.wte", ALIAS)], hidden=CANONICAL[1:]).unwrap()
    out = resolve([["W_E"]], name_map, unscheduled=UnscheduledPolicy.ERROR).unwrap()
    assert out.view.warnings == () and out.canonical.unscheduled == ()


def test_naming_a_synthetic_name_says_why_it_fails(tl_map: NameMap) -> None:
    result = resolve([["score.*", "unembed.*"], ["unembed.b_U", "blocks.*"]], tl_map)
    (problem,) = result.failure()
    assert (problem.code, problem.location.phase, problem.location.index) == ("name-synthetic", 1, 0)
    assert "no backing parameter" in problem.message


def test_synthetic_names_never_match_regexes(tl_map: NameMap) -> None:
    out = resolve([["score.*", "unembed.*"], ["blocks.*"]], tl_map).unwrap()
    assert "unembed.b_U" not in out.view.phases[0].names


def test_errors_carry_yaml_positions(tl_map: NameMap) -> None:
    from finetuning_scheduler.core import parse_yaml

    text = "0:\n  params: [score.weight, unembed.W_U]\n1:\n  params: [blocks.0.attn.W_Q, blocks.0.mlp]\n"
    raw = parse_yaml(text, "tl.yaml").unwrap()
    problems = resolve_in_view(raw, INVENTORY, tl_map).failure()
    assert problems[0].render().startswith("tl.yaml:4:3: error[fused-partial] phase 1 › params:")


def test_structured_schedules_are_accepted_too(tl_map: NameMap) -> None:
    schedule = Schedule((Phase(("score.*", "unembed.*")), Phase(("blocks.*",), lr=1e-4)))
    out = resolve_in_view(schedule, INVENTORY, tl_map).unwrap()
    assert out.canonical.phases[1].lr == 1e-4


def test_generated_schedules_keep_tensors_whole_and_validate(tl_map: NameMap) -> None:
    schedule = generate_in_view(tl_map)
    flat = [name for phase in schedule.phases for name in phase.params]
    assert sorted(flat) == sorted(tl_map.views)
    for canonical in CANONICAL:
        owners = {p for p, phase in enumerate(schedule.phases) for n in phase.params if n in tl_map.siblings(canonical)}
        assert len(owners) == 1
    out = resolve_in_view(schedule, INVENTORY, tl_map, ValidationOptions(unscheduled=UnscheduledPolicy.ERROR))
    assert out.unwrap().canonical.unscheduled == ()


# -- wrappers and checkpoint keys -----------------------------------------------------------------------------------


def test_strip_wrappers() -> None:
    assert strip_wrappers("module._orig_mod.net.0.weight") == "net.0.weight"
    assert strip_wrappers("model.layers.0._checkpoint_wrapped_module.mlp.weight") == "model.layers.0.mlp.weight"
    assert strip_wrappers("model._fsdp_wrapped_module.w") == "model.w"
    assert strip_wrappers("model.module.weight") == "model.module.weight"
    assert strip_wrappers("_orig_mod") == "_orig_mod"  # never strip a name to nothing


def test_unwrapped_schedule_works_compiled_or_not() -> None:
    plain = ("model.body.weight", "model.head.weight")
    compiled = ("model._orig_mod.body.weight", "model._orig_mod.head.weight")
    raw = {0: {"params": ["model.head.*"]}, 1: {"params": ["model.body.weight"]}}
    for names in (plain, compiled):
        out = resolve_in_view(raw, ParamInventory.from_names(names), unwrapped_name_map(names).unwrap()).unwrap()
        assert [p.names for p in out.canonical.phases] == [(names[1],), (names[0],)]
        assert [p.names for p in out.view.phases] == [(plain[1],), (plain[0],)]


def test_rename_keys_only_renames_pure_renames(tl_map: NameMap) -> None:
    keys = ["gpt.wte", "gpt.h.0.c_attn", "score.weight", "lm_head.weight"]
    assert dict(rename_keys(keys, tl_map, Direction.TO_VIEW).unwrap()) == {key: key for key in keys}


def test_rename_keys_collisions_are_errors() -> None:
    name_map = unwrapped_name_map(["_orig_mod.w"]).unwrap()
    assert codes(rename_keys(["_orig_mod.w", "w"], name_map, Direction.TO_VIEW)) == ["state-dict-key-collision"]


# -- properties -----------------------------------------------------------------------------------------------------

_component = st.sampled_from(["net", "layers", "0", "1", "attn", "mlp", "head", "module", "w", "bias"])
_wrapper = st.sampled_from(WRAPPER_COMPONENTS)


@st.composite
def wrapped_names(draw: st.DrawFn) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Distinct plain names and the same names with wrappers inserted (a compiled/wrapped variant)."""
    plain = draw(
        st.lists(st.lists(_component, min_size=1, max_size=4).map(".".join), min_size=1, max_size=12, unique=True)
    )
    assume(all(strip_wrappers(name) == name for name in plain))
    wrapped = []
    for name in plain:
        parts = name.split(".")
        spots = draw(st.lists(st.integers(0, len(parts) - 1), max_size=2))
        for spot in sorted(spots, reverse=True):
            parts.insert(spot, draw(_wrapper))
        lead = draw(st.sampled_from(["", *[f"{w}." for w in LEADING_WRAPPERS]]))
        wrapped.append(lead + ".".join(parts))
    return tuple(plain), tuple(wrapped)


@given(wrapped_names())
def test_unwrapping_is_a_bijection(pair: tuple[tuple[str, ...], tuple[str, ...]]) -> None:
    plain, wrapped = pair
    name_map = unwrapped_name_map(wrapped).unwrap()
    assert name_map.views == plain
    assert all(name_map.by_view[view].kind in ONE_TO_ONE for view in name_map.views)
    assert to_canonical(to_view(wrapped, name_map), name_map).unwrap() == wrapped
    assert to_view(to_canonical(plain, name_map).unwrap(), name_map) == plain


@given(wrapped_names(), st.lists(st.sampled_from(["step", "bn.running_mean"]), unique=True))
def test_checkpoint_keys_round_trip(pair: tuple[tuple[str, ...], tuple[str, ...]], extra: list[str]) -> None:
    plain, wrapped = pair
    assume(not set(extra) & set(plain))
    name_map = unwrapped_name_map(wrapped).unwrap()
    keys = [*wrapped, *extra]
    out = rename_keys(keys, name_map, Direction.TO_VIEW).unwrap()
    assert list(out.values()) == [*plain, *extra]
    back = rename_keys(out.values(), name_map, Direction.TO_CANONICAL).unwrap()
    assert list(back.values()) == keys


@st.composite
def one_to_one_maps(draw: st.DrawFn) -> tuple[tuple[str, ...], NameMap]:
    canonical = tuple(
        draw(
            st.lists(
                st.from_regex(r"[a-z]{1,3}(\.[a-z]{1,3}){0,2}", fullmatch=True), min_size=1, max_size=10, unique=True
            )
        )
    )
    views = draw(
        st.lists(
            st.from_regex(r"V[a-z]{1,4}", fullmatch=True), min_size=len(canonical), max_size=len(canonical), unique=True
        )
    )
    kinds = draw(st.lists(st.sampled_from([ALIAS, PREFIX, EXACT]), min_size=len(canonical), max_size=len(canonical)))
    bindings = [
        Binding.of(c if kind is EXACT else v, c, kind) for c, v, kind in zip(canonical, views, kinds, strict=True)
    ]
    return canonical, build_name_map(canonical, bindings).unwrap()


@given(one_to_one_maps())
def test_one_to_one_maps_translate_bijectively(pair: tuple[tuple[str, ...], NameMap]) -> None:
    canonical, name_map = pair
    views = name_map.views
    assert len(set(views)) == len(views) == len(canonical)
    assert to_view(canonical, name_map) == views
    assert to_canonical(views, name_map).unwrap() == canonical


@st.composite
def grouped_maps(draw: st.DrawFn) -> NameMap:
    """Maps with fused groups and ties mixed with one-to-one names."""
    size = draw(st.integers(1, 8))
    bindings: list[Binding] = []
    for i in range(size):
        shape = draw(st.sampled_from(["one", "fused", "tied"]))
        if shape == "one":
            bindings.append(Binding.of(f"v{i}", f"c{i}", ALIAS))
        elif shape == "fused":
            bindings += [Binding.of(f"v{i}.{p}", f"c{i}", FUSED) for p in range(draw(st.integers(2, 3)))]
        else:
            bindings += [Binding.of(f"v{i}", f"c{i}", ALIAS), Binding.of(f"t{i}", f"c{i}", TIED)]
    return build_name_map([f"c{i}" for i in range(size)], bindings).unwrap()


@given(grouped_maps())
def test_groups_translate_to_one_tensor_and_back_to_all_names(name_map: NameMap) -> None:
    for canonical, views in name_map.by_canonical.items():
        assert to_canonical(views, name_map).unwrap() == (canonical,)
        assert to_view([canonical], name_map) == views
    assert to_view(to_canonical(name_map.views, name_map).unwrap(), name_map) == name_map.views


@given(grouped_maps(), st.sampled_from(FusedPolicy))
def test_generated_schedules_thaw_every_tensor_exactly_once(name_map: NameMap, fused: FusedPolicy) -> None:
    canonical = tuple(name_map.by_canonical)
    inventory = ParamInventory.from_names(canonical)
    out = resolve_in_view(generate_in_view(name_map), inventory, name_map, fused=fused).unwrap()
    thawed = [name for phase in out.canonical.phases for name in phase.names]
    assert sorted(thawed) == sorted(canonical)


def test_identity_map_changes_nothing() -> None:
    names = ("a.weight", "a.bias")
    name_map = identity_map(names)
    assert name_map.is_identity and name_map.views == names
    view = validate(Schedule((Phase(("a.weight",)), Phase(("a.bias",)))), ParamInventory.from_names(names)).unwrap()
    assert resolve_in_view(view.schedule, ParamInventory.from_names(names), name_map).unwrap().canonical == view
