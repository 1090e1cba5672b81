"""Schedules in other names: apply a core :class:`NameMap` to a torch module, its names and its state dicts.

The functions here need torch only (no Lightning), so any training loop can use them. :class:`NameMapAdapterMixin`
turns them into strategy-adapter hooks: an adapter that only says how to build its ``NameMap`` gets schedule
validation, generation, thawing, log translation and checkpoint-key translation from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from returns.pipeline import is_successful
from returns.result import Failure, Result, Success
from torch import nn

from finetuning_scheduler.core import (
    Diagnostics,
    Direction,
    FusedPolicy,
    NameMap,
    ParamInventory,
    ResolvedSchedule,
    Schedule,
    TranslatedSchedule,
    error,
    generate_in_view,
    identity_map,
    rename_keys,
    render_all,
    resolve_in_view,
    to_canonical,
    to_view,
    unwrapped_name_map,
    view_inventory,
)

from ..engine import collector_paused, inventory, param_index, schedule_file_name, value_or_raise, write_schedule

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule

    from ._views import SchedulerView


class NameTranslationError(ValueError):
    """A name or checkpoint key could not be translated (the message lists every problem)."""

    def __init__(self, diagnostics: Diagnostics) -> None:
        self.diagnostics = diagnostics
        super().__init__(render_all(diagnostics))


def _unwrap(result: Result[Any, Diagnostics]) -> Any:
    return value_or_raise(result, NameTranslationError)


def view_named_parameters(module: nn.Module, name_map: NameMap) -> dict[str, nn.Parameter]:
    """The module's parameters by schedule-space name; the parts of a fused tensor give the whole tensor.

    >>> layer = nn.Linear(2, 1)
    >>> list(view_named_parameters(layer, identity_map(["weight", "bias"])))
    ['weight', 'bias']
    """
    params = dict(module.named_parameters())
    return {view: params[name_map.by_view[view].canonical or ""] for view in name_map.views}


def canonical_names(names: Iterable[str], name_map: NameMap, fused: FusedPolicy = FusedPolicy.ERROR) -> list[str]:
    """Schedule-space names of one phase to the module's names; names that are already canonical pass through.

    Raises:
        NameTranslationError: a name is neither, or a fused tensor is named only in part (with ``fused=ERROR``).

    >>> canonical_names(["w", "_orig_mod.b"], unwrapped_name_map(["_orig_mod.w", "_orig_mod.b"]).unwrap())
    ['_orig_mod.w', '_orig_mod.b']
    """
    given = list(names)
    canonical = set(name_map.by_canonical) | set(name_map.hidden)
    passthrough = [name for name in given if name not in name_map.by_view and name in canonical]
    views = [name for name in given if name in name_map.by_view or name not in canonical]
    return list(dict.fromkeys([*_unwrap(to_canonical(views, name_map, fused)), *passthrough]))


def _renamed(state_dict: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    # A plain dict in the same order (torch's load_state_dict copies whatever it gets into an OrderedDict itself);
    # the values are the same tensor objects: nothing is copied.
    return {mapping[key]: value for key, value in state_dict.items()}


def state_dict_to_view(state_dict: Mapping[str, Any], name_map: NameMap) -> dict[str, Any]:
    """A state dict with schedule-space keys where a key is a pure rename (``prefix``/``exact``); tensors shared.

    >>> sd = state_dict_to_view({"_orig_mod.w": 1, "step": 2}, unwrapped_name_map(["_orig_mod.w"]).unwrap())
    >>> sd
    {'w': 1, 'step': 2}
    """
    table = name_map.renames[Direction.TO_VIEW]
    renamed = {table.get(key, key): value for key, value in state_dict.items()}  # one pass: ~20 ms for 100k keys
    if len(renamed) != len(state_dict):  # two keys landed on one name: the core says which
        _unwrap(rename_keys(state_dict, name_map, Direction.TO_VIEW))
    return renamed


def state_dict_for_module(state_dict: Mapping[str, Any], module_keys: Iterable[str]) -> dict[str, Any]:
    """A state dict re-keyed for a module that is wrapped differently (compiled or not, ...); tensors shared.

    Keys of the module pass unchanged; any other key is matched by its unwrapped form (so a checkpoint of a compiled
    model loads into the plain model and back).

    >>> state_dict_for_module({"model._orig_mod.w": 1}, ["model.w"])
    {'model.w': 1}
    >>> state_dict_for_module({"model.w": 1}, ["model._orig_mod.w"])
    {'model._orig_mod.w': 1}
    """
    keys = tuple(module_keys)
    own = set(keys)
    foreign = [key for key in state_dict if key not in own]
    if not foreign:
        return dict(state_dict)
    incoming = _unwrap(unwrapped_name_map(foreign))
    current = _unwrap(unwrapped_name_map(keys))
    to_view_keys = _unwrap(rename_keys(foreign, incoming, Direction.TO_VIEW))
    onto = _unwrap(rename_keys(to_view_keys.values(), current, Direction.TO_CANONICAL))
    mapping = {key: onto[to_view_keys[key]] if key in to_view_keys else key for key in state_dict}
    clashes = sorted(key for key in foreign if mapping[key] in state_dict)
    if clashes:
        raise NameTranslationError(
            tuple(
                error("state-dict-key-collision", f"checkpoint key {key!r} and {mapping[key]!r} name one tensor")
                for key in clashes
            )
        )
    return _renamed(state_dict, mapping)


class NameMapAdapterMixin:
    """Strategy-adapter hooks driven by a :class:`NameMap`; mix in before ``StrategyAdapter``.

    Subclasses override :meth:`build_name_map` (the default is the identity). The map is rebuilt whenever the
    module's parameter names change (wrapping, compiling), so it always describes the live module.

    Attributes:
        fused_policy: what to do with a phase that names part of a fused tensor.
        portable_checkpoints: save checkpoints with schedule-space keys (loadable whatever the wrapping) rather than
            the module's own keys; loading accepts both either way.
    """

    fused_policy: FusedPolicy = FusedPolicy.ERROR
    portable_checkpoints: bool = False
    translated: TranslatedSchedule | None = None
    _name_map_cache: tuple[tuple[str, ...], NameMap] | None = None
    _portable_map_cache: tuple[tuple[str, ...], NameMap] | None = None

    if TYPE_CHECKING:
        pl_module: LightningModule
        fts_handle: SchedulerView

    def build_name_map(self, module: nn.Module, canonical: tuple[str, ...]) -> Result[NameMap, Diagnostics]:
        """The map between schedule-space names and ``canonical`` (the module's parameter names, in order)."""
        return Success(identity_map(canonical))

    def name_map_result(self) -> Result[NameMap, Diagnostics]:
        """The name map of the module as it is now (cached while its parameter names do not change)."""
        names = tuple(param_index(self.pl_module).named)
        cached = self._name_map_cache
        if cached is not None and cached[0] == names:
            return Success(cached[1])
        result = self.build_name_map(self.pl_module, names)
        if is_successful(result):
            self._name_map_cache = (names, result.unwrap())
        return result

    @property
    def name_map(self) -> NameMap:
        """The name map of the module as it is now.

        Raises:
            NameTranslationError: the adapter could not build a consistent map for this module.
        """
        return _unwrap(self.name_map_result())  # type: ignore[no-any-return]

    # -- schedules -----------------------------------------------------------------------------------------------

    def get_named_params_for_schedule_validation(self) -> dict[str, nn.Parameter]:
        """The parameters by schedule-space name (fused parts give their whole tensor; synthetic names none)."""
        return view_named_parameters(self.pl_module, self.name_map)

    def schedule_inventory(self) -> ParamInventory:
        """The parameters as data, by schedule-space name."""
        return view_inventory(inventory(self.pl_module), self.name_map)

    def validate_ft_sched(self) -> Result[ResolvedSchedule, Diagnostics]:
        """Validate the schedule in schedule space, then translate it (fused and tied tensors checked there too).

        Returns the schedule with schedule-space names (what the callback keeps and shows); the canonical
        translation is kept in :attr:`translated`.
        """
        fts = self.fts_handle
        with collector_paused():
            outcome = self.name_map_result().bind(
                lambda name_map: resolve_in_view(
                    fts.raw_schedule, inventory(self.pl_module), name_map, fts.validation_options, self.fused_policy
                )
            )
        if not is_successful(outcome):
            return Failure(outcome.failure())
        self.translated = outcome.unwrap()
        return Success(self.translated.view)

    def default_schedule(self) -> Schedule:
        """The implicit schedule in schedule-space names; a fused or tied tensor's names share a phase."""
        with collector_paused():
            return generate_in_view(self.name_map)

    def gen_ft_schedule(self, dump_loc: str | Path) -> Path:
        """Generate the implicit schedule in schedule-space names and write it to ``log_dir``."""
        return write_schedule(self.default_schedule(), Path(dump_loc) / schedule_file_name(self.pl_module))

    # -- names ---------------------------------------------------------------------------------------------------

    def fts_optim_transform(self, orig_pl: list[str], inspect_only: bool = False) -> list[str]:
        """Schedule-space names to the module's names (no side effects, whatever ``inspect_only``)."""
        return canonical_names(orig_pl, self.name_map, self.fused_policy)

    def logical_param_translation(self, param_names: list[str]) -> list[str]:
        """The module's names back to schedule-space names, for logs (every name of a fused or tied tensor)."""
        return list(to_view(param_names, self.name_map))

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def lightning_module_state_dict(self) -> dict[str, Any]:
        """The checkpoint's ``state_dict``: the module's keys, or schedule-space keys with ``portable_checkpoints``."""
        state_dict: dict[str, Any] = super().lightning_module_state_dict()  # type: ignore[misc]
        if not self.portable_checkpoints:
            return state_dict
        keys = tuple(state_dict)  # the same at every save: the map (about 10 us a key to build) is kept
        cached = self._portable_map_cache
        if cached is None or cached[0] != keys:
            cached = self._portable_map_cache = (keys, _unwrap(unwrapped_name_map(keys)))
        return state_dict_to_view(state_dict, cached[1])

    def load_model_state_dict(self, checkpoint: Mapping[str, Any], strict: bool = True) -> None:
        """Load a checkpoint whose keys may come from a differently wrapped module (compiled or not, ...).

        A distributed checkpoint carries no ``state_dict``: the strategy loaded it into the model in place.
        """
        if "state_dict" not in checkpoint:
            super().load_model_state_dict(checkpoint, strict=strict)  # type: ignore[misc]
            return
        module_keys = self.pl_module.state_dict().keys()
        rekeyed = {**checkpoint, "state_dict": state_dict_for_module(checkpoint["state_dict"], module_keys)}
        super().load_model_state_dict(rekeyed, strict=strict)  # type: ignore[misc]


__all__ = [
    "NameMapAdapterMixin",
    "NameTranslationError",
    "canonical_names",
    "state_dict_for_module",
    "state_dict_to_view",
    "view_named_parameters",
]
