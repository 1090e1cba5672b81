"""Diagnostics as values: locations, rendering, filtering."""

from __future__ import annotations

import pytest

from finetuning_scheduler.core import (
    Diagnostic,
    Location,
    Position,
    Severity,
    error,
    errors_only,
    render_all,
    warning,
    warnings_only,
)


@pytest.mark.parametrize(
    ("location", "text", "path"),
    [
        (Location(), "schedule", ()),
        (Location(3), "phase 3", (3,)),
        (Location(1, "lr"), "phase 1 › lr", (1, "lr")),
        (Location(2, "params", 0), "phase 2 › params[0]", (2, "params", 0)),
        (
            Location(1, "new_optimizer", subpath=("optimizer_init", "class_path")),
            "phase 1 › new_optimizer.optimizer_init.class_path",
            (1, "new_optimizer", "optimizer_init", "class_path"),
        ),
    ],
)
def test_locations_read_and_path(location: Location, text: str, path: tuple[object, ...]) -> None:
    assert (str(location), location.path) == (text, path)


def test_render_with_file_position_and_hint() -> None:
    found = Diagnostic(
        "no-match",
        "'x' matched nothing",
        Location(1, "params", 0),
        Severity.ERROR,
        "did you mean y?",
        Position(3, 5),
        "s.yaml",
    )
    assert (
        found.render()
        == "s.yaml:3:5: error[no-match] phase 1 › params[0]: 'x' matched nothing\n    hint: did you mean y?"
    )


def test_render_without_a_file_or_position() -> None:
    assert warning("w", "odd", Location(0, "lr")).render() == "warning[w] phase 0 › lr: odd"
    assert Diagnostic("c", "m", position=Position(1, 2)).render() == "1:2: error[c] schedule: m"


def test_errors_and_warnings_are_told_apart() -> None:
    found = (error("a", "x"), warning("b", "y"), error("c", "z"))
    assert [d.code for d in errors_only(found)] == ["a", "c"]
    assert [d.code for d in warnings_only(found)] == ["b"]
    assert render_all(found).splitlines() == ["error[a] schedule: x", "warning[b] schedule: y", "error[c] schedule: z"]
