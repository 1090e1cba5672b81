"""The pure transition function: unit cases and a Hypothesis state machine (checkpoint + restore included)."""

from __future__ import annotations

import attrs
import hypothesis.strategies as st
from hypothesis import given, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from finetuning_scheduler.core import (
    FitState,
    ParamInventory,
    Phase,
    Reason,
    ResolvedSchedule,
    Schedule,
    Signals,
    ValidationOptions,
    decided,
    effective_max_epochs,
    make_converter,
    next_transition,
    resume_plan,
    transition_plan,
    validate,
)


def _resolved(epochs: list[int], max_depth: int = -1) -> ResolvedSchedule:
    names = [f"layer.{i}.weight" for i in range(len(epochs))]
    phases = tuple(Phase((name,), epoch) for name, epoch in zip(names, epochs, strict=True))
    result = validate(Schedule(phases), ParamInventory.from_names(names), ValidationOptions(max_depth=max_depth))
    return result.unwrap()


def test_epoch_limit_and_early_stopping_compose() -> None:
    resolved = _resolved([3, -1, -1])
    assert next_transition(FitState(), resolved, Signals(2)) is None
    assert next_transition(FitState(), resolved, Signals(3)).reason is Reason.EPOCH  # type: ignore[union-attr]
    assert next_transition(FitState(), resolved, Signals(0, es_phase_complete=True)).to_depth == 1  # type: ignore[union-attr]
    assert next_transition(FitState(), resolved, Signals(0, True, epoch_transitions_only=True)) is None


def test_nothing_transitions_at_max_depth() -> None:
    resolved = _resolved([0, 0, 0], max_depth=1)
    assert next_transition(FitState(depth=1), resolved, Signals(50, True)) is None


def test_restore_best_replays_groups_after_the_best_depth() -> None:
    resolved = _resolved([-1, -1, -1, -1])
    transition = next_transition(FitState(depth=2, best_ckpt_depth=0), resolved, Signals(9, True))
    assert transition is not None
    plan = transition_plan(FitState(depth=2, best_ckpt_depth=0), resolved, transition, restore_best=True)
    assert (plan.keep_through, [g.phase for g in plan.add]) == (0, [1, 2, 3])
    plain = transition_plan(FitState(depth=2, best_ckpt_depth=0), resolved, transition, restore_best=False)
    assert (plain.keep_through, [g.phase for g in plain.add]) == (2, [3])


def test_final_phase_epoch_extends_max_epochs() -> None:
    assert effective_max_epochs(_resolved([2, 4, 3]), 3) == 4
    assert effective_max_epochs(_resolved([2, 4, -1]), 3) == 3


@given(st.integers(0, 5), st.integers(0, 5))
def test_fit_state_round_trips_through_plain_data(depth: int, best: int) -> None:
    conv = make_converter()
    state = FitState(depth, best)
    assert conv.structure(conv.unstructure(state), FitState) == state


class TransitionMachine(RuleBasedStateMachine):
    """Drive the pure decisions like a trainer would: epochs, early-stopping signals, checkpoints, restores."""

    @initialize(
        epochs=st.lists(st.integers(-1, 8), min_size=1, max_size=6),
        max_depth=st.integers(-1, 6),
        epochs_only=st.booleans(),
    )
    def start(self, epochs: list[int], max_depth: int, epochs_only: bool) -> None:
        if epochs_only:
            epochs = [max(e, 0) for e in epochs]
        self.resolved = _resolved(epochs, max_depth)
        self.epochs_only = epochs_only
        self.state = FitState()
        self.epoch = 0
        self.thawed = set(self.resolved.names_through(0))
        # The optimizer's groups after phase 0, as the uninterrupted fit builds them: (phase, names, lr).
        self.groups: list[tuple[int, tuple[str, ...], float]] = []
        self.saved: list[tuple[int, FitState, frozenset[str], tuple[tuple[int, tuple[str, ...], float], ...]]] = []
        self.history: list[int] = [0]

    @rule(es=st.booleans(), restore_best=st.booleans())
    def epoch_starts(self, es: bool, restore_best: bool) -> None:
        transition = next_transition(self.state, self.resolved, Signals(self.epoch, es, self.epochs_only))
        if transition is not None:
            assert transition.to_depth == self.state.depth + 1
            plan = transition_plan(self.state, self.resolved, transition, restore_best=restore_best)
            assert set(plan.thaw) >= self.thawed
            self.thawed = set(plan.thaw)
            # Apply the plan as the shell does: drop the groups after keep_through, then add the planned ones.
            self.groups = [g for g in self.groups if g[0] <= plan.keep_through]
            self.groups += [(g.phase, g.names, g.lr) for g in plan.add]
            self.state = attrs.evolve(self.state, depth=transition.to_depth)
        self.state = decided(self.state, self.epoch)
        self.history.append(self.state.depth)
        self.epoch += 1

    @precondition(lambda self: self.epoch > 0)
    @rule(es=st.booleans())
    def the_same_epoch_starts_again(self, es: bool) -> None:
        # A mid-epoch checkpoint makes a resumed fit start that epoch again: it must not be decided twice.
        again = Signals(self.epoch - 1, es, self.epochs_only)
        assert next_transition(self.state, self.resolved, again) is None

    @rule()
    def checkpoint(self) -> None:
        self.state = attrs.evolve(self.state, best_ckpt_depth=self.state.depth)
        self.saved.append((self.epoch, self.state, frozenset(self.thawed), tuple(self.groups)))

    @precondition(lambda self: bool(self.saved))
    @rule(data=st.data())
    def restore(self, data: st.DataObject) -> None:
        epoch, state, thawed, groups = data.draw(st.sampled_from(self.saved))
        plan = resume_plan(state, self.resolved)
        assert set(plan.thaw) == thawed and plan.depth == state.depth
        # The resumed optimizer gets exactly the groups (phases, names, lrs, order) the uninterrupted fit had.
        assert tuple((g.phase, g.names, g.lr) for g in plan.add) == groups
        self.state, self.epoch, self.thawed, self.groups = state, epoch, set(thawed), list(groups)
        self.history.append(-1)  # a restore may go back in depth; between restores depth never decreases

    @invariant()
    def depth_is_bounded_and_monotonic_between_restores(self) -> None:
        if not hasattr(self, "state"):
            return
        assert 0 <= self.state.depth <= self.resolved.max_depth
        segment = (
            self.history[len(self.history) - 1 - self.history[::-1].index(-1) + 1 :]
            if -1 in self.history
            else self.history
        )
        assert segment == sorted(segment)

    @invariant()
    def every_phase_so_far_has_its_group_once_in_phase_order(self) -> None:
        if hasattr(self, "state"):
            assert [g[0] for g in self.groups] == list(range(1, self.state.depth + 1))

    @invariant()
    def thawed_is_exactly_the_phases_so_far(self) -> None:
        if hasattr(self, "state"):
            assert self.thawed == set(self.resolved.names_through(self.state.depth))


TestTransitionMachine = TransitionMachine.TestCase
TestTransitionMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
