"""The cattrs converter: strict primitives, so that a schedule means exactly what it says."""

from __future__ import annotations

import re
from typing import Any

import pytest

from finetuning_scheduler.core import ClassInit, LRSchedulerInit, Phase, make_converter


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        (3, int, 3),
        (2.5, float, 2.5),
        (2, float, 2.0),
        ("1e-5", float, 1e-5),
        (" 3.0E-4 ", float, 3e-4),
        ("-.5", float, -0.5),
        ("a.b", str, "a.b"),
        (False, bool, False),
    ],
)
def test_what_is_accepted(value: object, type_: type, expected: object) -> None:
    assert make_converter().structure(value, type_) == expected


@pytest.mark.parametrize(
    ("value", "type_", "message"),
    [
        (True, int, "expected an integer, got boolean True"),
        (2.7, int, "expected an integer, got float 2.7"),
        ("3", int, "expected an integer, got str '3'"),
        (True, float, "expected a number, got boolean True"),
        ("fast", float, "expected a number, got str 'fast'"),
        ("1e-5x", float, "expected a number, got str '1e-5x'"),
        (3, str, "expected a string, got int 3"),
        ("yes", bool, "expected true or false, got str 'yes'"),
        (1, bool, "expected true or false, got int 1"),
    ],
)
def test_what_is_refused(value: object, type_: type, message: str) -> None:
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        make_converter().structure(value, type_)


def test_a_bare_string_is_not_a_list_of_names() -> None:
    with pytest.raises(TypeError, match=re.escape("expected a list of strings, got str 'a.b'")):
        make_converter().structure("a.b", tuple[str, ...])
    with pytest.raises(TypeError, match=re.escape("expected a list of numbers, got float 0.1")):
        make_converter().structure(0.1, tuple[float, ...])


def test_each_converter_is_independent() -> None:
    first, second = make_converter(), make_converter()
    first.register_structure_hook(int, lambda value, _: 0)
    assert second.structure(5, int) == 5


def test_unstructuring_gives_plain_data_and_omits_defaults() -> None:
    scheduler = LRSchedulerInit(ClassInit("a.B", {"x": [1, 2]}), {"interval": "step"}, (1e-5,))
    data: Any = make_converter().unstructure(Phase(("a",), lr=0.5, new_lr_scheduler=scheduler))
    assert data == {
        "params": ["a"],
        "lr": 0.5,
        "new_lr_scheduler": {
            "lr_scheduler_init": {"class_path": "a.B", "init_args": {"x": [1, 2]}},
            "pl_lrs_cfg": {"interval": "step"},
            "init_pg_lrs": [1e-5],
        },
    }
    assert type(data["new_lr_scheduler"]["pl_lrs_cfg"]) is dict, "read-only views become plain dicts"
