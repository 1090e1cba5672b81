"""Adapter references, the registry of built-ins plus plugins, resolution for a strategy flag: pure, no imports."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finetuning_scheduler.core import (
    BASE_ADAPTER,
    BUILTIN_ADAPTERS,
    SUPPORTED_STRATEGY_FLAGS,
    AdapterParams,
    AdapterSelection,
    AdapterSpec,
    Origin,
    RefForm,
    Severity,
    check_adapter_cfg,
    check_strategy_flag,
    parse_adapter_ref,
    registry,
    registry_problems,
    resolve_adapter,
)

TL = AdapterSpec("transformerbridge", "interpretune.adapters.transformer_lens:Bridge", "interpretune", "0.5")
OTHER = AdapterSpec("other", "other_pkg.mod:Other", "other-pkg", "1.2")


def resolved(flag: str, custom: dict[str, str] | None, *discovered: AdapterSpec) -> AdapterSelection:
    return resolve_adapter(flag, custom, BUILTIN_ADAPTERS, discovered).unwrap()


def failed(flag: str, custom: dict[str, str] | None, *discovered: AdapterSpec) -> list[str]:
    return [d.code for d in resolve_adapter(flag, custom, BUILTIN_ADAPTERS, discovered).failure()]


# -- parsing references ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "form", "module", "attr"),
    [
        ("pkg.mod:Adapter", RefForm.COLON, "pkg.mod", "Adapter"),
        ("pkg.mod:Outer.Inner", RefForm.COLON, "pkg.mod", "Outer.Inner"),
        (" pkg.mod : Adapter ", RefForm.COLON, "pkg.mod", "Adapter"),
        ("pkg.mod.Adapter", RefForm.DOTTED, "pkg.mod", "Adapter"),
        ("mod.Adapter", RefForm.DOTTED, "mod", "Adapter"),
        ("transformerbridge", RefForm.NAME, "", ""),
    ],
)
def test_parse_reference_forms(text: str, form: RefForm, module: str, attr: str) -> None:
    ref = parse_adapter_ref(text).unwrap()
    assert (ref.form, ref.module, ref.attr, ref.text) == (form, module, attr, text)


@pytest.mark.parametrize(
    "text", ["", "   ", "pkg:", ":Adapter", "pkg.:A", "pkg-x.mod:A", "a..b:C", "pkg.mod.", "1pkg:A"]
)
def test_malformed_references_are_errors(text: str) -> None:
    assert [d.code for d in parse_adapter_ref(text).failure()] == ["invalid-adapter-ref"]


def test_reference_value_normalises_paths_and_lowercases_names() -> None:
    assert parse_adapter_ref("pkg.mod.Adapter").unwrap().value == "pkg.mod:Adapter"
    assert parse_adapter_ref("TransformerBridge").unwrap().value == "transformerbridge"


@given(st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=4), st.booleans())
def test_path_references_round_trip(parts: list[str], colon: bool) -> None:
    module, attr = ".".join(parts), "Adapter"
    text = f"{module}:{attr}" if colon else f"{module}.{attr}"
    ref = parse_adapter_ref(text).unwrap()
    assert (ref.module, ref.attr, ref.value) == (module, attr, f"{module}:{attr}")


# -- the built-in table ---------------------------------------------------------------------------------------------


def test_builtin_table_covers_the_strategies_that_need_an_adapter() -> None:
    assert set(BUILTIN_ADAPTERS) == {"fsdp", "fsdp_cpu_offload", "modelparallelstrategy", "unwrapped_names"}
    assert all(name == name.lower() for name in BUILTIN_ADAPTERS)
    assert all(value.startswith("finetuning_scheduler.adapters_builtin.") for value in BUILTIN_ADAPTERS.values())
    with pytest.raises(TypeError):
        BUILTIN_ADAPTERS["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize("flag", ["fsdp", "fsdp_cpu_offload", "modelparallelstrategy"])
def test_flags_with_a_builtin_select_it_without_a_custom_map(flag: str) -> None:
    selection = resolved(flag, None)
    assert (selection.spec.value, selection.spec.origin, selection.reference) == (
        BUILTIN_ADAPTERS[flag],
        Origin.BUILTIN,
        None,
    )


@pytest.mark.parametrize("flag", ["ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "single_device"])
def test_ddp_family_and_single_device_use_the_base_adapter(flag: str) -> None:
    assert resolved(flag, None).spec.value == BASE_ADAPTER
    assert resolved(flag, {}).spec.origin is Origin.BASE  # an empty map is no map, as in FTS


def test_plugins_are_never_selected_from_the_flag_alone() -> None:
    named_like_a_flag = AdapterSpec("single_device", "evil:Adapter", "evil", "6.6.6")
    assert resolved("single_device", None, named_like_a_flag).spec.value == BASE_ADAPTER


# -- resolution with custom_strategy_adapters ------------------------------------------------------------------------


def test_entry_point_name_resolves_to_its_spec() -> None:
    selection = resolved("single_device", {"single_device": "transformerbridge"}, TL, OTHER)
    assert selection == AdapterSelection("single_device", TL, "transformerbridge")


def test_names_match_case_insensitively() -> None:
    assert resolved("single_device", {"single_device": "TransformerBridge"}, TL).spec == TL


@pytest.mark.parametrize(
    "reference",
    ["interpretune.adapters.transformer_lens:Bridge", "interpretune.adapters.transformer_lens.Bridge"],
)
def test_paths_resolve_without_discovery(reference: str) -> None:
    selection = resolved("single_device", {"single_device": reference})
    assert selection.spec.value == "interpretune.adapters.transformer_lens:Bridge"
    assert (selection.spec.origin, selection.reference) == (Origin.PATH, reference)


def test_several_flags_may_share_one_adapter() -> None:
    custom = {"single_device": "transformerbridge", "ddp": "transformerbridge", "auto": TL.value}
    specs = {flag: resolved(flag, custom, TL).spec.value for flag in custom}
    assert set(specs.values()) == {TL.value}


@pytest.mark.parametrize("name", ["my-pkg.adapter", "my.adapter", "Mixed-Case"])
def test_entry_point_names_with_dots_or_dashes_are_names_first(name: str) -> None:
    spec = AdapterSpec(name.lower(), "my_pkg.adapters:Adapter", "my-pkg", "1.0")
    assert resolved("single_device", {"single_device": name}, spec).spec == spec


def test_builtin_names_are_valid_references() -> None:
    selection = resolved("single_device", {"single_device": "unwrapped_names"})
    assert (selection.spec.origin, selection.spec.value) == (Origin.BUILTIN, BUILTIN_ADAPTERS["unwrapped_names"])


def test_unmapped_flag_is_the_fts_error_listing_mapped_flags() -> None:
    found = resolve_adapter("single_device", {"ddp": "x", "fsdp": "y"}, BUILTIN_ADAPTERS, ()).failure()
    (problem,) = found
    assert problem.code == "adapter-flag-not-mapped"
    assert problem.message == (
        "Current strategy name (single_device) does not map to a custom strategy adapter in the provided "
        "`custom_strategy_adapters` mapping ({'ddp': 'x', 'fsdp': 'y'})."
    )
    assert problem.hint is not None and "ddp, fsdp" in problem.hint


def test_an_auto_key_serves_the_flags_not_mapped_explicitly() -> None:
    mapping = {"ddp": "fsdp", "auto": "unwrapped_names"}
    assert resolve_adapter("single_device", mapping, BUILTIN_ADAPTERS, ()).unwrap().spec.name == "unwrapped_names"
    assert resolve_adapter("ddp", mapping, BUILTIN_ADAPTERS, ()).unwrap().spec.name == "fsdp"


def test_unknown_name_lists_the_known_ones() -> None:
    (problem,) = resolve_adapter("single_device", {"single_device": "invalidname"}, BUILTIN_ADAPTERS, [TL]).failure()
    assert problem.code == "adapter-unknown"
    assert "Invalid adapter name 'invalidname'" in problem.message
    assert "Must be either a registered plugin name" in problem.message
    assert "transformerbridge" in problem.message and "fsdp" in problem.message


def test_malformed_reference_is_an_error() -> None:
    assert failed("single_device", {"single_device": "pkg:"}) == ["invalid-adapter-ref"]


# -- collisions -----------------------------------------------------------------------------------------------------


def test_a_plugin_never_replaces_a_builtin() -> None:
    impostor = AdapterSpec("fsdp", "evil.mod:FSDP", "evil", "6.6.6")
    assert resolved("fsdp", None, impostor).spec.value == BUILTIN_ADAPTERS["fsdp"]
    assert resolved("single_device", {"single_device": "FSDP"}, impostor).spec.value == BUILTIN_ADAPTERS["fsdp"]
    assert registry(BUILTIN_ADAPTERS, [impostor])["fsdp"].origin is Origin.BUILTIN
    (problem,) = registry_problems(BUILTIN_ADAPTERS, [impostor])
    assert (problem.code, problem.severity) == ("adapter-shadowed", Severity.WARNING)
    assert "evil 6.6.6" in problem.message and problem.hint is not None and "evil.mod:FSDP" in problem.hint


def test_two_plugins_with_one_name_are_ambiguous_only_when_selected() -> None:
    first = AdapterSpec("shared", "a.mod:A", "dist-a", "1.0")
    second = AdapterSpec("shared", "b.mod:B", "dist-b", "2.0")
    (problem,) = registry_problems(BUILTIN_ADAPTERS, [first, second])
    assert (problem.code, problem.severity) == ("adapter-ambiguous", Severity.WARNING)
    assert "dist-a 1.0" in problem.message and "dist-b 2.0" in problem.message
    assert "shared" not in registry(BUILTIN_ADAPTERS, [first, second])
    assert failed("single_device", {"single_device": "shared"}, first, second) == ["adapter-ambiguous"]
    assert resolved("single_device", {"single_device": "b.mod:B"}, first, second).spec.value == "b.mod:B"
    assert resolved("single_device", {"single_device": "tl"}, first, second, AdapterSpec("tl", "t:T")).spec.name == "tl"


def test_the_same_class_registered_twice_is_not_ambiguous() -> None:
    again = AdapterSpec(TL.name, TL.value, "interpretune-fork", "0.6")
    assert registry_problems(BUILTIN_ADAPTERS, [TL, again]) == ()
    assert resolved("single_device", {"single_device": "transformerbridge"}, TL, again).spec.value == TL.value


def test_malformed_entry_point_values_are_warnings() -> None:
    bad = [AdapterSpec("nocolon", "justamodule", "p", "1"), AdapterSpec("empty", "", "q", "2")]
    problems = registry_problems(BUILTIN_ADAPTERS, [TL, *bad])
    assert [(d.code, d.severity) for d in problems] == [("adapter-entry-point-malformed", Severity.WARNING)] * 2
    assert "'nocolon' of distribution p 1" in problems[0].message


def test_registry_is_read_only_and_keyed_by_lowercased_name() -> None:
    table = registry(BUILTIN_ADAPTERS, [TL])
    assert list(table) == ["fsdp", "fsdp_cpu_offload", "modelparallelstrategy", "unwrapped_names", "transformerbridge"]
    with pytest.raises(TypeError):
        table["x"] = TL  # type: ignore[index]


# -- strategy flags and constructor configuration --------------------------------------------------------------------


@pytest.mark.parametrize("flag", [*SUPPORTED_STRATEGY_FLAGS, "", None, "DDP"])
def test_supported_flags_pass(flag: str | None) -> None:
    assert check_strategy_flag(flag, allow_untested=False) == ()


def test_untested_flag_is_an_error_naming_the_supported_ones() -> None:
    (problem,) = check_strategy_flag("deepspeed", allow_untested=False)
    assert problem.is_error
    assert "has not yet been adapted for or rigorously tested" in problem.message
    assert "'single_device'" in problem.message and "allow_untested=True" in problem.message


def test_allow_untested_turns_it_into_the_fts_warning() -> None:
    (problem,) = check_strategy_flag("deepspeed", allow_untested=True)
    assert not problem.is_error
    assert problem.message == "Allowing untested strategy 'deepspeed' because ``allow_untested`` is ``True``."


def test_cfg_unknown_keys_name_the_adapter_and_its_parameters() -> None:
    params = AdapterParams("pkg.Adapter", ("use_tl_names", "fused"), required=("fused",))
    problems = check_adapter_cfg(params, {"use_tl_name": True})
    assert [d.code for d in problems] == ["adapter-cfg-unknown-key", "adapter-cfg-missing-key"]
    assert "pkg.Adapter" in problems[0].message and "['fused', 'use_tl_names']" in problems[0].message
    assert check_adapter_cfg(params, {"fused": "error"}) == ()


def test_cfg_any_key_goes_to_var_keyword_constructors() -> None:
    assert check_adapter_cfg(AdapterParams("pkg.A", (), var_keyword=True), {"anything": 1}) == ()
