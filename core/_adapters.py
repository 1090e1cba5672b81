"""Which strategy adapter to use: references, discovered entry points and built-ins as data, resolved purely.

Discovery (reading entry points) and loading (importing the chosen class) are I/O and live in the shell; this module
only decides. A reference is written three ways: an entry-point or built-in name (``transformerbridge``), a colon
path (``pkg.mod:Class``) or a dotted path (``pkg.mod.Class``).

Collision policy: a plugin never replaces a built-in. A plugin whose name is also a built-in's is shadowed (the
built-in is used) and the shadowing is reported as a warning; the plugin stays reachable by its path. Two plugins
that register one name with different classes are ambiguous: a warning while nobody selects the name, an error when
``custom_strategy_adapters`` refers to it by name. Plugins are never selected implicitly: only built-ins are chosen
from the strategy flag alone, a plugin needs an entry in ``custom_strategy_adapters``.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Iterable, Mapping

import attrs
from returns.result import Failure, Result, Success

from ._diagnostics import Diagnostic, Diagnostics, error, warning

ENTRY_POINT_GROUP = "finetuning_scheduler.strategy_adapters"
"""The entry-point group third-party packages register their adapters under."""

BASE_ADAPTER = "finetuning_scheduler.strategy_adapters:StrategyAdapter"
"""The adapter used for strategies that need none of their own (the DDP family, ``single_device``)."""

BUILTIN_ADAPTERS: Mapping[str, str] = types.MappingProxyType(
    {
        "fsdp": "finetuning_scheduler.adapters_builtin._fsdp:FSDPStrategyAdapter",
        # Lightning registers this flag for FSDPStrategy(cpu_offload=True); it needs the FSDP adapter too.
        "fsdp_cpu_offload": "finetuning_scheduler.adapters_builtin._fsdp:FSDPStrategyAdapter",
        "modelparallelstrategy": "finetuning_scheduler.adapters_builtin._model_parallel:ModelParallelStrategyAdapter",
        "unwrapped_names": "finetuning_scheduler.adapters_builtin._names:UnwrappedNamesStrategyAdapter",
    }
)
"""Built-in adapters by lowercased name: static reference strings, loaded like any plugin."""

SUPPORTED_STRATEGY_FLAGS: tuple[str, ...] = (
    "ddp",
    "ddp_find_unused_parameters_false",
    "ddp_find_unused_parameters_true",
    "ddp_spawn",
    "ddp_fork",
    "ddp_notebook",
    "single_device",
    "fsdp",
    "fsdp_cpu_offload",
    "modelparallelstrategy",
)
"""Lightning strategy flags the scheduler is tested with; others need ``allow_untested=True``."""


class RefForm(enum.Enum):
    """How an adapter reference is spelled."""

    NAME = "name"
    COLON = "module:Class"
    DOTTED = "module.Class"


class Origin(enum.Enum):
    """Where an adapter specification came from."""

    BUILTIN = "built-in"
    ENTRY_POINT = "entry point"
    PATH = "path"
    BASE = "base"


@attrs.frozen
class AdapterRef:
    """An adapter reference as the user wrote it, parsed.

    Attributes:
        text: the reference exactly as written.
        form: how it is spelled.
        module: the module path (empty for a name).
        attr: the attribute (class) inside the module (empty for a name).
    """

    text: str
    form: RefForm
    module: str = ""
    attr: str = ""

    @property
    def value(self) -> str:
        """The reference in entry-point value form (``module:attr``), or the lowercased name.

        >>> parse_adapter_ref("pkg.mod.Adapter").unwrap().value
        'pkg.mod:Adapter'
        """
        return f"{self.module}:{self.attr}" if self.form is not RefForm.NAME else self.text.strip().lower()


@attrs.frozen
class AdapterSpec:
    """An adapter that can be loaded: a name and an import reference, with the distribution that provides it.

    Attributes:
        name: the lowercased name (entry-point name, built-in name, or the reference as written for paths).
        value: the import reference, ``module:attr``.
        distribution: the distribution that registered it (entry points only).
        version: that distribution's version.
        origin: where the specification came from.
    """

    name: str
    value: str
    distribution: str | None = None
    version: str | None = None
    origin: Origin = Origin.ENTRY_POINT

    @property
    def provider(self) -> str:
        """Who provides the adapter, for messages.

        >>> AdapterSpec("x", "m:C", "pkg", "1.0").provider
        "entry point 'x' of distribution pkg 1.0"
        """
        if self.origin is Origin.ENTRY_POINT:
            return f"entry point {self.name!r} of distribution {self.distribution or '?'} {self.version or '?'}"
        return f"{self.origin.value} adapter {self.name!r}"


@attrs.frozen
class AdapterSelection:
    """The adapter chosen for a strategy flag, and why.

    Attributes:
        flag: the Lightning strategy flag.
        spec: what to load.
        reference: the reference from ``custom_strategy_adapters``; ``None`` when chosen from the flag alone.
    """

    flag: str
    spec: AdapterSpec
    reference: str | None = None


def _is_dotted_identifier(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _path_ref(text: str, form: RefForm, module: str, attr: str) -> Result[AdapterRef, Diagnostics]:
    if _is_dotted_identifier(module) and _is_dotted_identifier(attr):
        return Success(AdapterRef(text, form, module, attr))
    message = f"adapter reference {text!r} is not a valid {form.value} path"
    return Failure((error("invalid-adapter-ref", message, hint="write 'package.module:ClassName'"),))


def parse_adapter_ref(text: str) -> Result[AdapterRef, Diagnostics]:
    """Parse a reference: ``module:Class``, ``module.Class`` or a bare name (an entry-point or built-in name).

    >>> parse_adapter_ref("pkg.mod:Outer.Inner").unwrap()
    AdapterRef(text='pkg.mod:Outer.Inner', form=<RefForm.COLON: 'module:Class'>, module='pkg.mod', attr='Outer.Inner')
    >>> parse_adapter_ref("TransformerBridge").unwrap().value
    'transformerbridge'
    >>> parse_adapter_ref("pkg:").failure()[0].code
    'invalid-adapter-ref'
    """
    stripped = text.strip()
    if ":" in stripped:
        module, _, attr = stripped.partition(":")
        return _path_ref(text, RefForm.COLON, module.strip(), attr.strip())
    if "." in stripped:
        module, _, attr = stripped.rpartition(".")
        return _path_ref(text, RefForm.DOTTED, module, attr)
    if stripped:
        return Success(AdapterRef(text, RefForm.NAME))
    return Failure((error("invalid-adapter-ref", "the adapter reference is empty"),))


def builtin_specs(builtins: Mapping[str, str]) -> tuple[AdapterSpec, ...]:
    """The built-in table as specifications, sorted by name.

    >>> [s.name for s in builtin_specs({"b": "m:B", "a": "m:A"})]
    ['a', 'b']
    """
    return tuple(AdapterSpec(name.lower(), value, origin=Origin.BUILTIN) for name, value in sorted(builtins.items()))


def _grouped(discovered: Iterable[AdapterSpec]) -> dict[str, list[AdapterSpec]]:
    """Discovered specifications by name; one entry per distinct class reference (a re-install is not a clash)."""
    groups: dict[str, list[AdapterSpec]] = {}
    for spec in discovered:
        group = groups.setdefault(spec.name, [])
        if all(spec.value != other.value for other in group):
            group.append(spec)
    return groups


def registry(builtins: Mapping[str, str], discovered: Iterable[AdapterSpec]) -> Mapping[str, AdapterSpec]:
    """Every adapter that a bare name can select: built-ins, then unambiguous plugins; built-ins always win.

    >>> plugin = AdapterSpec("fsdp", "evil:Adapter", "evil", "1.0")
    >>> mine = AdapterSpec("mine", "pkg:Mine", "pkg", "2.0")
    >>> {name: spec.value for name, spec in registry({"fsdp": "fts:FSDP"}, [plugin, mine]).items()}
    {'fsdp': 'fts:FSDP', 'mine': 'pkg:Mine'}
    """
    table = {spec.name: spec for spec in builtin_specs(builtins)}
    for name, group in sorted(_grouped(discovered).items()):
        if name not in table and len(group) == 1:
            table[name] = group[0]
    return types.MappingProxyType(table)


def _shadowed(spec: AdapterSpec) -> Diagnostic:
    message = f"{spec.provider} has the name of a built-in adapter; the built-in is used for {spec.name!r}"
    hint = f"to use the plugin, reference it by its path {spec.value!r} in custom_strategy_adapters"
    return warning("adapter-shadowed", message, hint=hint)


def _ambiguity(name: str, group: list[AdapterSpec]) -> str:
    return f"adapter name {name!r} is registered several times: " + "; ".join(
        f"{spec.provider} -> {spec.value}" for spec in group
    )


def _ambiguous(name: str, group: list[AdapterSpec]) -> Diagnostic:
    hint = "reference the adapter you want by its path ('package.module:Class') in custom_strategy_adapters"
    return warning("adapter-ambiguous", _ambiguity(name, group), hint=hint)


def _is_class_path(ref: AdapterRef) -> bool:
    return ref.form is not RefForm.NAME


def _malformed(spec: AdapterSpec) -> Diagnostics:
    if parse_adapter_ref(spec.value).map(_is_class_path).value_or(False):
        return ()
    message = f"{spec.provider} has the value {spec.value!r}, which is not a 'module:Class' reference"
    return (warning("adapter-entry-point-malformed", message, hint="this plugin cannot be loaded; fix its metadata"),)


def registry_problems(builtins: Mapping[str, str], discovered: Iterable[AdapterSpec]) -> Diagnostics:
    """Warnings about the installed plugins: shadowed built-in names, ambiguous names, malformed values.

    >>> found = [AdapterSpec("fsdp", "evil:A", "evil", "1"), AdapterSpec("x", "a:A", "a", "1"),
    ...          AdapterSpec("x", "b:B", "b", "2"), AdapterSpec("y", "no colon", "c", "3")]
    >>> [d.code for d in registry_problems({"fsdp": "fts:F"}, found)]
    ['adapter-shadowed', 'adapter-ambiguous', 'adapter-entry-point-malformed']
    """
    specs = tuple(discovered)
    names = {name.lower() for name in builtins}
    problems: list[Diagnostic] = [_shadowed(spec) for spec in specs if spec.name in names]
    problems += [_ambiguous(n, g) for n, g in sorted(_grouped(specs).items()) if len(g) > 1 and n not in names]
    return tuple(problems) + tuple(d for spec in specs for d in _malformed(spec))


def _not_mapped(flag: str, custom_map: Mapping[str, str]) -> Diagnostic:
    message = (
        f"Current strategy name ({flag}) does not map to a custom strategy adapter in the provided "
        f"`custom_strategy_adapters` mapping ({dict(custom_map)})."
    )
    hint = f"mapped strategy flags: {', '.join(sorted(custom_map)) or 'none'}; add an entry for {flag!r}"
    return error("adapter-flag-not-mapped", message, hint=hint)


def _invalid_name(flag: str, ref: AdapterRef, known: Iterable[str]) -> Diagnostic:
    message = (
        f"Invalid adapter name {ref.text!r} for strategy flag {flag!r}. Must be either a registered plugin name "
        f"(found in STRATEGY_ADAPTERS: {sorted(known)}) or a fully qualified class name in 'module.Class' or "
        "'module:Class' format."
    )
    hint = "is the package that registers it installed in this environment? `pip list` shows what is installed"
    return error("adapter-unknown", message, hint=hint)


def _by_name(
    flag: str, text: str, builtins: Mapping[str, str], discovered: tuple[AdapterSpec, ...]
) -> Result[AdapterSelection, Diagnostics] | None:
    """Resolve a reference that is a known name (built-ins win); ``None`` when it is no known name."""
    name = text.strip().lower()
    group = _grouped(discovered).get(name, [])
    if name in builtins or len(group) == 1:
        return Success(AdapterSelection(flag, registry(builtins, discovered)[name], text))
    if group:
        message = _ambiguity(name, group) + f"; strategy flag {flag!r} refers to it by name"
        hint = "reference the adapter you want by its path ('package.module:Class') instead"
        return Failure((error("adapter-ambiguous", message, hint=hint),))
    return None


def _by_path(
    flag: str, ref: AdapterRef, builtins: Mapping[str, str], discovered: tuple[AdapterSpec, ...]
) -> Result[AdapterSelection, Diagnostics]:
    if ref.form is RefForm.NAME:
        return Failure((_invalid_name(flag, ref, registry(builtins, discovered)),))
    return Success(AdapterSelection(flag, AdapterSpec(ref.text, ref.value, origin=Origin.PATH), ref.text))


def _by_flag(flag: str, builtins: Mapping[str, str]) -> AdapterSelection:
    value = builtins.get(flag)
    if value is None:
        return AdapterSelection(flag, AdapterSpec("base", BASE_ADAPTER, origin=Origin.BASE))
    return AdapterSelection(flag, AdapterSpec(flag, value, origin=Origin.BUILTIN))


def resolve_adapter(
    flag: str,
    custom_map: Mapping[str, str] | None,
    builtins: Mapping[str, str],
    discovered: Iterable[AdapterSpec],
) -> Result[AdapterSelection, Diagnostics]:
    """Choose the adapter for a Lightning strategy flag.

    Without ``custom_map`` the flag selects a built-in (``fsdp``...) or the base adapter. With one, the flag must be
    mapped; its reference is a built-in name, a discovered entry-point name (lowercased) or a class path. An
    ``"auto"`` key serves every flag not mapped explicitly: Lightning replaces ``strategy="auto"`` by a concrete
    strategy before callbacks run, so an ``"auto"`` key (as in the plugin docs) would otherwise never match.

    Args:
        flag: the Lightning strategy flag (``single_device``, ``ddp``, ``fsdp``...).
        custom_map: ``custom_strategy_adapters``: strategy flag -> adapter reference.
        builtins: the built-in table (:data:`BUILTIN_ADAPTERS`).
        discovered: the installed entry points, as data.

    >>> plugin = AdapterSpec("tl", "pkg.mod:TL", "pkg", "1.0")
    >>> resolve_adapter("single_device", {"single_device": "TL"}, BUILTIN_ADAPTERS, [plugin]).unwrap().spec.value
    'pkg.mod:TL'
    >>> resolve_adapter("ddp", None, BUILTIN_ADAPTERS, []).unwrap().spec.value
    'finetuning_scheduler.strategy_adapters:StrategyAdapter'
    >>> resolve_adapter("single_device", {"auto": "tl"}, BUILTIN_ADAPTERS, [plugin]).unwrap().spec.value
    'pkg.mod:TL'
    >>> print(resolve_adapter("single_device", {"ddp": "tl"}, BUILTIN_ADAPTERS, [plugin]).failure()[0].message)
    Current strategy name (single_device) does not map to a custom strategy adapter in the provided \
`custom_strategy_adapters` mapping ({'ddp': 'tl'}).
    """
    if not custom_map:
        return Success(_by_flag(flag, builtins))
    text = custom_map.get(flag, custom_map.get("auto"))
    if text is None:
        return Failure((_not_mapped(flag, custom_map),))
    specs = tuple(discovered)
    named = _by_name(flag, text, builtins, specs)  # names first: an entry-point name may contain dots
    if named is not None:
        return named
    return parse_adapter_ref(text).bind(lambda ref: _by_path(flag, ref, builtins, specs))


def check_strategy_flag(
    flag: str | None, allow_untested: bool, supported: tuple[str, ...] = SUPPORTED_STRATEGY_FLAGS
) -> Diagnostics:
    """An error for a strategy the scheduler is not tested with, or a warning when ``allow_untested`` is set.

    >>> check_strategy_flag("ddp", False)
    ()
    >>> check_strategy_flag("deepspeed", True)[0].message
    "Allowing untested strategy 'deepspeed' because ``allow_untested`` is ``True``."
    >>> check_strategy_flag("deepspeed", False)[0].code
    'strategy-untested'
    """
    if not flag or flag.lower() in supported:
        return ()
    if allow_untested:
        message = f"Allowing untested strategy {flag!r} because ``allow_untested`` is ``True``."
        return (warning("strategy-untested", message),)
    message = (
        "FTS is has not yet been adapted for or rigorously tested using the specified distributed strategy. Please "
        f"select from currently compatible distributed strategies ({list(supported)}) or if you would like to attempt "
        "to use the currently specified strategy, pass ``allow_untested=True`` to the FinetuningScheduler callback "
        "when adding it."
    )
    return (error("strategy-untested", message, hint=f"the strategy flag is {flag!r}"),)


@attrs.frozen
class AdapterParams:
    """The constructor parameters of an adapter class, as data (the shell reads them with ``inspect``).

    Attributes:
        adapter: the class's qualified name, for messages.
        names: the keyword parameters it accepts.
        required: those without a default.
        var_keyword: whether it takes ``**kwargs`` (then any key is accepted).
    """

    adapter: str
    names: tuple[str, ...]
    required: tuple[str, ...] = ()
    var_keyword: bool = False


def check_adapter_cfg(params: AdapterParams, cfg: Mapping[str, object]) -> Diagnostics:
    """Check ``strategy_adapter_cfg`` against the adapter's constructor: unknown and missing keys.

    >>> params = AdapterParams("pkg.TL", ("use_tl_names", "fused"))
    >>> print(check_adapter_cfg(params, {"use_tl_name": True})[0].message)
    strategy_adapter_cfg key(s) ['use_tl_name'] are not parameters of adapter pkg.TL; it accepts \
['fused', 'use_tl_names']
    """
    problems: list[Diagnostic] = []
    unknown = sorted(str(key) for key in cfg if key not in params.names)
    if unknown and not params.var_keyword:
        message = (
            f"strategy_adapter_cfg key(s) {unknown} are not parameters of adapter {params.adapter}; "
            f"it accepts {sorted(params.names)}"
        )
        problems.append(error("adapter-cfg-unknown-key", message, hint="remove or rename the key(s)"))
    missing = [name for name in params.required if name not in cfg]
    if missing:
        message = f"adapter {params.adapter} needs strategy_adapter_cfg key(s) {missing}"
        problems.append(error("adapter-cfg-missing-key", message))
    return tuple(problems)
