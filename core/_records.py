"""The core's immutable records: schedules as written, the model's parameters as data, resolved schedules."""

from __future__ import annotations

import enum
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import attrs

from ._diagnostics import Diagnostics, Key, Position


def _frozen_mapping(value: Mapping[Any, Any] | None) -> Mapping[Any, Any]:
    # Read-only view of a private copy: callers' dicts are never shared, and the record cannot be mutated.
    return types.MappingProxyType(dict(value or {}))


@attrs.frozen
class ClassInit:
    """A class to instantiate, as written in a schedule (``{class_path: ..., init_args: {...}}``).

    Attributes:
        class_path: dotted path of the class, e.g. ``torch.optim.AdamW``.
        init_args: keyword arguments for its constructor (plain YAML values).
    """

    class_path: str
    init_args: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)


@attrs.frozen
class OptimizerInit:
    """A phase's ``new_optimizer`` block.

    Attributes:
        optimizer_init: the optimizer class and its arguments.
    """

    optimizer_init: ClassInit


@attrs.frozen
class LRSchedulerInit:
    """A phase's ``new_lr_scheduler`` block.

    Attributes:
        lr_scheduler_init: the scheduler class and its arguments.
        pl_lrs_cfg: Lightning scheduler-config keys (``interval``, ``frequency``, ``name``, ``monitor``, ...).
        init_pg_lrs: explicit learning rates for the existing parameter groups.
        use_current_optimizer_pg_lrs: keep the groups' current learning rates.
    """

    lr_scheduler_init: ClassInit
    pl_lrs_cfg: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)
    init_pg_lrs: tuple[float, ...] | None = None
    use_current_optimizer_pg_lrs: bool | None = None


@attrs.frozen
class Phase:
    """One phase of a schedule, as the user wrote it.

    Attributes:
        params: exact parameter names or regular expressions (matched with ``re.match``, as FTS does).
        max_transition_epoch: move on at the start of the first epoch ``>=`` this; ``-1`` means only early
            stopping ends the phase.
        lr: the learning rate of the groups this phase adds (``None``: the schedule's default).
        new_optimizer: reinitialise the optimizer when this phase starts.
        new_lr_scheduler: reinitialise the LR scheduler when this phase starts.
    """

    params: tuple[str, ...] = ()
    max_transition_epoch: int = -1
    lr: float | None = None
    new_optimizer: OptimizerInit | None = None
    new_lr_scheduler: LRSchedulerInit | None = None


class PlainPhases(Sequence[Phase]):
    """Phases that list parameters and nothing else (a generated schedule), kept as one tuple of name tuples; each
    :class:`Phase` is built on access. Behaves as an immutable tuple of phases.

    A generated schedule for a 100k-tensor model has 50k phases. As records they were 50k objects that the cyclic
    garbage collector tracks for the whole fit, enough to set off an extra full collection of a big model's heap
    (seconds); tuples of strings are untracked by the collector, so these columns cost it nothing.

    >>> phases = PlainPhases((("b.w", "b.b"), ("a.w",)))
    >>> phases[-1], len(phases), phases == (Phase(("b.w", "b.b")), Phase(("a.w",)))
    (Phase(params=('a.w',), max_transition_epoch=-1, lr=None, new_optimizer=None, new_lr_scheduler=None), 2, True)
    """

    __slots__ = ("params",)

    def __init__(self, params: Sequence[tuple[str, ...]]) -> None:
        self.params: tuple[tuple[str, ...], ...] = tuple(params)  # phase i's entries, read by validation directly

    def __len__(self) -> int:
        return len(self.params)

    @overload
    def __getitem__(self, index: int) -> Phase: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Phase, ...]: ...

    def __getitem__(self, index: int | slice) -> Phase | tuple[Phase, ...]:
        if isinstance(index, slice):
            return tuple(map(Phase, self.params[index]))
        return Phase(self.params[index])

    def __iter__(self) -> Iterator[Phase]:
        return map(Phase, self.params)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PlainPhases):
            return self.params == other.params
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


def params_of(phases: Sequence[Phase]) -> Sequence[tuple[str, ...]]:
    """Each phase's entries, read from the column when the phases are :class:`PlainPhases`.

    >>> list(params_of((Phase(("a",)),))) == list(params_of(PlainPhases((("a",),)))) == [("a",)]
    True
    """
    return phases.params if isinstance(phases, PlainPhases) else [phase.params for phase in phases]


@attrs.frozen
class SourceMap:
    """Where each node of a schedule was written, kept beside the schedule so errors can cite ``file:line:col``.

    Attributes:
        file: the file name, when the schedule came from a file.
        positions: the position of each node, keyed by its path (phase index, key, list index, ...).
    """

    file: str | None = None
    positions: Mapping[tuple[Key, ...], Position] = attrs.field(factory=dict, converter=_frozen_mapping)

    def position_of(self, path: tuple[Key, ...]) -> Position | None:
        """The position of the node at ``path``, or of its nearest written ancestor.

        >>> sm = SourceMap("s.yaml", {(0,): Position(1, 1), (0, "lr"): Position(2, 3)})
        >>> sm.position_of((0, "params", 4))
        Position(line=1, column=1)
        """
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return None


@attrs.frozen
class Schedule:
    """A fine-tuning schedule as written: phases in order, with their source positions kept on the side.

    Attributes:
        phases: the phases, phase ``i`` at index ``i``.
        source: where each node was written (ignored by equality).
    """

    phases: Sequence[Phase]  # a tuple, or PlainPhases for a generated schedule
    source: SourceMap = attrs.field(factory=SourceMap, eq=False, repr=False)


@attrs.frozen
class ParamInventory:
    """A model's parameters as data, in registration order (one column per attribute, for speed).

    Attributes:
        names: canonical parameter names, in ``named_parameters()`` order (tied weights appear once).
        numels: number of elements of each parameter.
        shapes: shape of each parameter.
        dtypes: dtype name of each parameter (``float32``...).
        modules: the path of the module each parameter belongs to (``""`` for the root).
        aliases: other names of shared (tied) parameters, mapped to the registered name.
    """

    names: tuple[str, ...]
    numels: tuple[int, ...] = ()
    shapes: tuple[tuple[int, ...], ...] = ()
    dtypes: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    aliases: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)

    @classmethod
    def from_names(cls, names: tuple[str, ...] | list[str], aliases: Mapping[str, str] | None = None) -> ParamInventory:
        """An inventory that knows only names (sizes 1, module = the name's parent path).

        >>> ParamInventory.from_names(["model.0.weight"]).modules
        ('model.0',)
        """
        names = tuple(names)
        return cls(
            names,
            numels=(1,) * len(names),
            shapes=((1,),) * len(names),
            dtypes=("float32",) * len(names),
            modules=tuple(n.rpartition(".")[0] for n in names),
            aliases=aliases or {},
        )


class UnscheduledPolicy(enum.Enum):
    """What to do with parameters that no phase ever thaws."""

    WARN = "warn"
    ERROR = "error"
    IGNORE = "ignore"


@attrs.frozen
class ValidationOptions:
    """Options of :func:`validate` (mirroring the FTS constructor arguments that affect validation).

    Attributes:
        base_max_lr: the learning rate of phases ``> 0`` that give none.
        epoch_transitions_only: every phase must then have a ``max_transition_epoch``.
        max_depth: the deepest phase to run; ``-1`` runs the whole schedule.
        unscheduled: what to do with parameters that no phase thaws.
        reinit_supported: whether ``new_optimizer`` / ``new_lr_scheduler`` blocks can be carried out by the caller;
            when not, each one is an error reported with the others (the Lightning callback and the driver do not
            carry them out yet).
    """

    base_max_lr: float = 1e-5
    epoch_transitions_only: bool = False
    max_depth: int = -1
    unscheduled: UnscheduledPolicy = UnscheduledPolicy.WARN
    reinit_supported: bool = True


@attrs.frozen
class ResolvedPhase:
    """A phase after validation: concrete parameter names, defaults applied.

    Attributes:
        names: the canonical parameter names this phase thaws, in the order its entries list them (a regex's
            matches in registration order), as FTS expands them.
        max_transition_epoch: ``-1`` or the epoch at whose start the schedule moves on.
        lr: the learning rate of the groups this phase adds; ``None`` for phase 0 (it uses the optimizer's).
        new_optimizer: optimizer reinitialisation directive.
        new_lr_scheduler: LR scheduler reinitialisation directive.
    """

    names: tuple[str, ...]
    max_transition_epoch: int
    lr: float | None
    new_optimizer: OptimizerInit | None = None
    new_lr_scheduler: LRSchedulerInit | None = None


class ResolvedPhases(Sequence[ResolvedPhase]):
    """The resolved phases, kept as columns and built on access.

    A generated schedule for a 100k-parameter model has 50k phases, and a fit looks at a handful of them; building
    every :class:`ResolvedPhase` up front was a third of validation's time. Behaves as an immutable tuple.

    >>> phases = ResolvedPhases((("a",), ("b",)), (-1, 3), (None, 1e-5), (Phase(("a",)), Phase(("b",))))
    >>> phases[-1], len(phases), phases == (phases[0], phases[1])
    (ResolvedPhase(names=('b',), max_transition_epoch=3, lr=1e-05, new_optimizer=None, new_lr_scheduler=None), 2, True)
    """

    __slots__ = ("_epochs", "_lrs", "_names", "_written")

    def __init__(
        self,
        names: Sequence[tuple[str, ...]],
        epochs: Sequence[int],
        lrs: Sequence[float | None],
        written: Sequence[Phase],
    ) -> None:
        self._names, self._epochs, self._lrs = tuple(names), tuple(epochs), tuple(lrs)
        self._written = written if isinstance(written, PlainPhases) else tuple(written)

    def rows(self) -> Iterator[tuple[tuple[str, ...], int, float | None, Phase]]:
        """Each phase's names, epoch, lr and written phase, without building a :class:`ResolvedPhase` per phase."""
        return zip(self._names, self._epochs, self._lrs, self._written, strict=True)

    def _build(self, index: int) -> ResolvedPhase:
        phase = self._written[index]
        return ResolvedPhase(
            self._names[index], self._epochs[index], self._lrs[index], phase.new_optimizer, phase.new_lr_scheduler
        )

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> ResolvedPhase: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[ResolvedPhase, ...]: ...

    def __getitem__(self, index: int | slice) -> ResolvedPhase | tuple[ResolvedPhase, ...]:
        if isinstance(index, slice):
            return tuple(self._build(i) for i in range(*index.indices(len(self))))
        return self._build(range(len(self))[index])  # range indexing: negative indices and IndexError for free

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


def phase_rows(
    phases: Sequence[ResolvedPhase],
) -> Iterator[tuple[tuple[str, ...], int, float | None, Phase | ResolvedPhase]]:
    """Each phase's names, epoch, lr and the record holding its reinitialisation blocks; the columns of
    :class:`ResolvedPhases` are read directly, without building a :class:`ResolvedPhase` per phase.

    >>> [row[:3] for row in phase_rows((ResolvedPhase(("a",), 2, None),))]
    [(('a',), 2, None)]
    """
    if isinstance(phases, ResolvedPhases):
        return phases.rows()
    return ((p.names, p.max_transition_epoch, p.lr, p) for p in phases)


def _class_init_data(init: ClassInit) -> dict[str, Any]:
    return {"class_path": init.class_path, "init_args": dict(init.init_args)}


def reinit_data(phase: ResolvedPhase | Phase) -> dict[str, Any]:
    """A phase's reinitialisation blocks as plain data in FTS's format (only the keys that were given)."""
    data: dict[str, Any] = {}
    if phase.new_optimizer is not None:
        data["new_optimizer"] = {"optimizer_init": _class_init_data(phase.new_optimizer.optimizer_init)}
    spec = phase.new_lr_scheduler
    if spec is not None:
        block: dict[str, Any] = {"lr_scheduler_init": _class_init_data(spec.lr_scheduler_init)}
        if spec.pl_lrs_cfg:
            block["pl_lrs_cfg"] = dict(spec.pl_lrs_cfg)
        if spec.init_pg_lrs is not None:
            block["init_pg_lrs"] = list(spec.init_pg_lrs)
        if spec.use_current_optimizer_pg_lrs is not None:
            block["use_current_optimizer_pg_lrs"] = spec.use_current_optimizer_pg_lrs
        data["new_lr_scheduler"] = block
    return data


@attrs.frozen
class ResolvedSchedule:
    """A validated schedule, built only by :func:`validate` ("parse, don't validate").

    Attributes:
        phases: every phase of the schedule (including those past ``max_depth``).
        max_depth: the deepest phase that will run.
        epoch_watermark: the largest ``max_transition_epoch`` of any phase (``-1`` if none).
        unscheduled: parameters that no phase thaws (they stay frozen).
        warnings: the warnings validation produced.
        schedule: the schedule as written.
    """

    phases: Sequence[ResolvedPhase]
    max_depth: int
    epoch_watermark: int
    unscheduled: tuple[str, ...]
    warnings: Diagnostics
    schedule: Schedule = attrs.field(eq=False, repr=False)

    def as_data(self) -> dict[int, dict[str, Any]]:
        """The resolved schedule as plain data in FTS's format: concrete names, defaults applied.

        >>> rs = ResolvedSchedule((ResolvedPhase(("a",), 2, None), ResolvedPhase(("b",), -1, 1e-5)),
        ...                       1, 2, (), (), Schedule(()))
        >>> rs.as_data()
        {0: {'params': ['a'], 'max_transition_epoch': 2}, 1: {'params': ['b'], 'max_transition_epoch': -1, 'lr': 1e-05}}
        """
        return {
            i: {
                "params": list(p.names),
                "max_transition_epoch": p.max_transition_epoch,
                **({"lr": p.lr} if i else {}),
                **reinit_data(p),
            }
            for i, p in enumerate(self.phases)
        }

    def names_through(self, depth: int) -> tuple[str, ...]:
        """All parameter names thawed once ``depth`` is reached.

        >>> rs = ResolvedSchedule((ResolvedPhase(("a",), -1, None), ResolvedPhase(("b",), -1, 1e-5)),
        ...                       1, -1, (), (), Schedule(()))
        >>> rs.names_through(1)
        ('a', 'b')
        """
        return tuple(name for phase in tuple(self.phases)[: depth + 1] for name in phase.names)
