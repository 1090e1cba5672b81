"""Plugin discovery, selection, loading and construction through real entry points (dist-info on sys.path)."""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING

import pytest

from finetuning_scheduler.core import BUILTIN_ADAPTERS, AdapterSpec
from finetuning_scheduler.strategy_adapters import (
    STRATEGY_ADAPTERS,
    AdapterError,
    AdapterRegistry,
    AdapterWarning,
    FSDPStrategyAdapter,
    StrategyAdapter,
    UnwrappedNamesStrategyAdapter,
    discover_adapters,
    load_adapter,
    make_adapter,
)

if TYPE_CHECKING:
    from conftest import Site  # tests/plugins/conftest.py (fixtures only at run time)

GOOD = "good_plugin_mod"


def adapter_class(adapter: StrategyAdapter) -> str:
    return f"{type(adapter).__module__}:{type(adapter).__qualname__}"


def ours(specs: tuple[AdapterSpec, ...], site: Site) -> list[AdapterSpec]:
    """The specs discovered from the test's own site (the venv may hold other plugins)."""
    names = {path.name.split("-")[0].replace("_", "-") for root in site.roots for path in root.glob("*.dist-info")}
    return [spec for spec in specs if spec.distribution in names]


# -- discovery ------------------------------------------------------------------------------------------------------


def test_discovery_reads_entry_points_as_data_without_importing(good_site: Site) -> None:
    good_site.install(
        "broken-plugin",
        "0.3",
        {"broken": "broken_plugin_mod:Adapter"},
        {"broken_plugin_mod": "raise RuntimeError('boom')\n"},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterWarning)
        specs = discover_adapters()
    assert ours(specs, good_site) == [
        AdapterSpec("broken", "broken_plugin_mod:Adapter", "broken-plugin", "0.3"),
        AdapterSpec("fussy", "good_plugin_mod:FussyAdapter", "good-plugins", "1.0"),
        AdapterSpec("goodone", "good_plugin_mod:GoodAdapter", "good-plugins", "1.0"),  # name lowercased
        AdapterSpec("notadapter", "good_plugin_mod:NotAnAdapter", "good-plugins", "1.0"),
    ]
    assert GOOD not in sys.modules and "broken_plugin_mod" not in sys.modules


def test_a_distribution_installed_twice_counts_once(good_site: Site) -> None:
    good_site.install("good-plugins", "0.9", {"goodone": "old_mod:GoodAdapter"}, root=good_site.new_root())
    found = [spec for spec in discover_adapters() if spec.name == "goodone"]
    assert found == [AdapterSpec("goodone", "good_plugin_mod:GoodAdapter", "good-plugins", "1.0")]


def test_unreadable_metadata_costs_one_warning_naming_the_distribution(good_site: Site) -> None:
    good_site.install("mangled", "2.1", entry_points_text="[finetuning_scheduler.strategy_adapters]\nno equals sign\n")
    with pytest.warns(AdapterWarning) as record:
        specs = discover_adapters()
    messages = [str(w.message) for w in record if "mangled" in str(w.message)]
    assert len(messages) == 1 and "mangled 2.1" in messages[0] and "TypeError" in messages[0]
    assert "goodone" in {spec.name for spec in specs}
    with pytest.warns(AdapterWarning, match="mangled"):  # every discovery says so again; training goes on
        assert isinstance(make_adapter("single_device", {"single_device": "goodone"}), StrategyAdapter)


# -- each reference format ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["goodone", "GoodOne", "GOODONE", f"{GOOD}:GoodAdapter", f"{GOOD}.GoodAdapter"])
def test_each_reference_format_selects_the_adapter(good_site: Site, reference: str) -> None:
    adapter = make_adapter("single_device", {"single_device": reference})
    assert adapter_class(adapter) == f"{GOOD}:GoodAdapter"


def test_several_flags_share_one_adapter(good_site: Site) -> None:
    custom = {"single_device": "goodone", "ddp": "GoodOne", "ddp_spawn": f"{GOOD}:GoodAdapter"}
    classes = {type(make_adapter(flag, custom)) for flag in custom}
    assert len(classes) == 1 and next(iter(classes)).__name__ == "GoodAdapter"


def test_only_the_selected_plugin_is_imported(good_site: Site) -> None:
    good_site.install(
        "other-plugin",
        "5.0",
        {"other": "other_plugin_mod:Other"},
        {"other_plugin_mod": "raise SystemExit('never import me')\n"},
    )
    make_adapter("single_device", {"single_device": "goodone"})
    assert GOOD in sys.modules and "other_plugin_mod" not in sys.modules


# -- strategy_adapter_cfg -------------------------------------------------------------------------------------------


def test_cfg_reaches_the_constructor(good_site: Site) -> None:
    adapter = make_adapter("single_device", {"single_device": "goodone"}, {"alpha": 7, "use_tl_names": True})
    assert (adapter.alpha, adapter.use_tl_names) == (7, True)  # type: ignore[attr-defined]


def test_unknown_cfg_key_names_the_adapter_and_its_parameters(good_site: Site) -> None:
    with pytest.raises(AdapterError) as raised:
        make_adapter("single_device", {"single_device": "goodone"}, {"alpa": 7})
    message = str(raised.value)
    assert "['alpa']" in message and f"{GOOD}.GoodAdapter" in message and "['alpha', 'use_tl_names']" in message
    assert "'single_device'" in message


def test_constructor_error_is_one_clear_error(good_site: Site) -> None:
    with pytest.raises(
        AdapterError, match=r"FussyAdapter for strategy flag 'single_device' could not be built"
    ) as raised:
        make_adapter("single_device", {"single_device": "fussy"}, {"mode": "z"})
    assert "ValueError: mode must be 'a' or 'b', got 'z'" in str(raised.value)
    assert isinstance(raised.value.__cause__, ValueError)


def test_cfg_goes_to_builtin_adapters_too() -> None:
    adapter = make_adapter("single_device", {"single_device": "unwrapped_names"}, {"portable_checkpoints": True})
    assert isinstance(adapter, UnwrappedNamesStrategyAdapter) and adapter.portable_checkpoints
    with pytest.raises(AdapterError, match=r"\['awp_overide'\] are not parameters of adapter .*FSDPStrategyAdapter"):
        make_adapter("fsdp", None, {"awp_overide": ["model.0"]})
    with pytest.raises(AdapterError, match="accepts \\[\\]"):
        make_adapter("ddp", None, {"anything": 1})  # the base adapter takes no options


# -- failures of the selected plugin --------------------------------------------------------------------------------


def test_broken_unrelated_plugin_only_warns(good_site: Site) -> None:
    good_site.install(
        "broken-plugin",
        "0.3",
        {"broken": "broken_plugin_mod:Adapter"},
        {"broken_plugin_mod": "raise RuntimeError('boom')\n"},
    )
    good_site.install("sloppy-plugin", "0.1", {"sloppy": "no_class_given"})
    good_site.install("missing-plugin", "2.0", {"missing": "no_such_plugin_module:Adapter"})
    good_site.install(
        "typo-plugin", "1.1", {"typo": "typo_plugin_mod:Adaptr"}, {"typo_plugin_mod": "class Adapter:\n    pass\n"}
    )
    with pytest.warns(AdapterWarning) as record:
        adapter = make_adapter("single_device", {"single_device": "goodone"})
    assert adapter_class(adapter) == f"{GOOD}:GoodAdapter"
    messages = [str(w.message) for w in record if issubclass(w.category, AdapterWarning)]
    tail = ". It is not the adapter in use, so training goes on\n    hint: reinstall or uninstall"
    assert messages == [
        "entry point 'sloppy' of distribution sloppy-plugin 0.1 has the value 'no_class_given', which is not a "
        "'module:Class' reference\n    hint: this plugin cannot be loaded; fix its metadata",
        "strategy adapter plugin 'broken' (entry point 'broken' of distribution broken-plugin 0.3 -> "
        f"broken_plugin_mod:Adapter) cannot be loaded: broken_plugin_mod.py defines no 'Adapter' at its top level{tail}"
        " broken-plugin",
        "strategy adapter plugin 'missing' (entry point 'missing' of distribution missing-plugin 2.0 -> "
        f"no_such_plugin_module:Adapter) cannot be loaded: module 'no_such_plugin_module' was not found{tail}"
        " missing-plugin",
        "strategy adapter plugin 'typo' (entry point 'typo' of distribution typo-plugin 1.1 -> "
        f"typo_plugin_mod:Adaptr) cannot be loaded: typo_plugin_mod.py defines no 'Adaptr' at its top level{tail}"
        " typo-plugin",
    ]
    # Found by reading their metadata and source: none was imported, so none can break anything.
    assert not {"broken_plugin_mod", "typo_plugin_mod"} & set(sys.modules)


def test_broken_selected_plugin_is_one_clear_error(site: Site) -> None:
    site.install(
        "broken-plugin",
        "0.3",
        {"broken": "broken_plugin_mod:Adapter"},
        {"broken_plugin_mod": "raise RuntimeError('boom')\n"},
    )
    with pytest.raises(AdapterError) as raised:
        make_adapter("single_device", {"single_device": "broken"})
    message = str(raised.value)
    assert message.startswith(
        "Could not import the specified custom strategy adapter class for strategy flag 'single_device'"
    )
    for part in (
        "from 'broken'",
        "entry point 'broken' of distribution broken-plugin 0.3",
        "broken_plugin_mod:Adapter",
        "RuntimeError: boom",
        "To fix:",
    ):
        assert part in message
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_selected_plugin_with_a_missing_dependency(site: Site) -> None:
    source = "import definitely_not_installed_dependency_xyz\n"
    site.install("needy-plugin", "1.1", {"needy": "needy_plugin_mod:Adapter"}, {"needy_plugin_mod": source})
    with pytest.raises(AdapterError, match="definitely_not_installed_dependency_xyz") as raised:
        make_adapter("ddp", {"ddp": "needy"})
    assert "needy-plugin 1.1" in str(raised.value) and "missing dependency" in str(raised.value)


def test_selected_plugin_with_a_missing_class_suggests_the_right_ones(good_site: Site) -> None:
    good_site.install("typo-plugin", "1.0", {"typo": f"{GOOD}:GodAdapter"})
    with pytest.raises(AdapterError, match=r"has no attribute 'GodAdapter'") as raised:
        make_adapter("single_device", {"single_device": "typo"})
    assert "['FussyAdapter', 'GoodAdapter']" in str(raised.value)


def test_missing_module_in_a_path_reference_is_the_fts_error() -> None:
    with pytest.raises(
        AdapterError,
        match=r"Could not import the specified custom strategy adapter class.*nonexistent\.module:NonexistentClass",
    ):
        make_adapter("single_device", {"single_device": "nonexistent.module:NonexistentClass"})
    with pytest.raises(AdapterError, match="import the specified custom"):
        make_adapter("single_device", {"single_device": "finetuning_scheduler.strategy_adapters.IAmMissing"})


def test_wrong_type_is_an_error(good_site: Site) -> None:
    for reference in ("notadapter", f"{GOOD}:NotAnAdapter", "collections.OrderedDict"):
        with pytest.raises(AdapterError, match="not a StrategyAdapter subclass"):
            make_adapter("single_device", {"single_device": reference})


# -- names ----------------------------------------------------------------------------------------------------------


def test_a_plugin_named_like_a_builtin_never_replaces_it(good_site: Site) -> None:
    good_site.install("impostor", "6.6.6", {"FSDP": f"{GOOD}:GoodAdapter"})
    with pytest.warns(
        AdapterWarning, match=r"entry point 'fsdp' of distribution impostor 6\.6\.6 has the name of a built-in"
    ):
        adapter = make_adapter("single_device", {"single_device": "fsdp"})
    assert type(adapter) is FSDPStrategyAdapter
    assert type(make_adapter("fsdp")) is FSDPStrategyAdapter  # no custom map: the built-in, no discovery at all
    assert GOOD not in sys.modules
    # Still reachable on purpose, by its path:
    with pytest.warns(AdapterWarning, match="has the name of a built-in"):
        adapter = make_adapter("single_device", {"single_device": f"{GOOD}:GoodAdapter"})
    assert adapter_class(adapter) == f"{GOOD}:GoodAdapter"


def test_two_plugins_with_one_name_are_an_error_only_when_selected_by_it(good_site: Site) -> None:
    good_site.install("rival", "2.0", {"goodone": "rival_mod:Rival"})
    with pytest.warns(AdapterWarning, match="adapter name 'goodone' is registered several times"):
        assert isinstance(make_adapter("single_device", {"single_device": "fussy"}), StrategyAdapter)
    with pytest.warns(AdapterWarning), pytest.raises(AdapterError, match=r"good-plugins 1\.0.*rival 2\.0") as raised:
        make_adapter("single_device", {"single_device": "goodone"})
    assert "by its path" in str(raised.value)


def test_unmapped_flag_is_the_fts_error() -> None:
    with pytest.raises(
        AdapterError, match=r"Current strategy name \(single_device\) does not map to a custom strategy adapter"
    ) as raised:
        make_adapter("single_device", {"ddp": "unwrapped_names", "fsdp": "unwrapped_names"})
    assert "mapped strategy flags: ddp, fsdp" in str(raised.value)


def test_unknown_name_is_the_fts_error() -> None:
    with pytest.raises(
        AdapterError,
        match=r"Invalid adapter name 'invalidname'.*Must be either a registered plugin name.*or a fully qualified",
    ):
        make_adapter("single_device", {"single_device": "invalidname"})


def test_untested_strategy_needs_allow_untested() -> None:
    with pytest.raises(AdapterError, match="has not yet been adapted for or rigorously tested"):
        make_adapter("deepspeed")
    with pytest.warns(AdapterWarning, match="Allowing untested strategy 'deepspeed'"):
        assert type(make_adapter("deepspeed", allow_untested=True)) is StrategyAdapter


# -- STRATEGY_ADAPTERS ----------------------------------------------------------------------------------------------


def test_registry_view_is_keyed_by_lowercased_name_and_imports_lazily(good_site: Site) -> None:
    good_site.install(
        "broken-plugin",
        "0.3",
        {"broken": "broken_plugin_mod:Adapter"},
        {"broken_plugin_mod": "raise RuntimeError('boom')\n"},
    )
    view = AdapterRegistry()
    assert set(BUILTIN_ADAPTERS) | {"goodone", "fussy", "notadapter", "broken"} <= set(view)
    assert "GoodOne" in view and "broken" in view and GOOD not in sys.modules
    assert view.specs["goodone"].distribution == "good-plugins"
    assert view["GoodOne"].__name__ == "GoodAdapter"
    assert view["fsdp"] is FSDPStrategyAdapter
    with pytest.raises(AdapterError, match="RuntimeError: boom"):
        view["broken"]
    with pytest.raises(KeyError):
        view["absent"]
    with pytest.raises(TypeError):
        view["x"] = StrategyAdapter  # type: ignore[index]


def test_registry_refresh_sees_new_plugins(site: Site) -> None:
    view = AdapterRegistry()
    assert "latecomer" not in view
    site.install("late", "1.0", {"latecomer": "late_mod:Late"})
    view.refresh()
    assert view.specs["latecomer"].value == "late_mod:Late"


def test_facade_registry_holds_the_builtins() -> None:
    assert isinstance(STRATEGY_ADAPTERS, AdapterRegistry)
    assert STRATEGY_ADAPTERS["fsdp"] is FSDPStrategyAdapter
    assert STRATEGY_ADAPTERS["modelparallelstrategy"].__name__ == "ModelParallelStrategyAdapter"


def test_load_adapter_accepts_a_bare_spec() -> None:
    spec = AdapterSpec("unwrapped_names", BUILTIN_ADAPTERS["unwrapped_names"])
    assert load_adapter(spec) is UnwrappedNamesStrategyAdapter
