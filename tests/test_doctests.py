"""The docstring examples of the shell, the built-in adapters and the facade's helper run, under installed names.

(The core's doctests are collected directly by pytest from core/; these packages import Lightning-backed modules
whose classes must not be loaded twice under a second name, so they are run here instead.)
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import finetuning_scheduler.adapters_builtin
import finetuning_scheduler.shell

_SKIP = {"finetuning_scheduler.shell.hf"}  # needs the optional transformers extra; tested in tests/integrations


def _modules() -> list[str]:
    names = []
    for package in (finetuning_scheduler.shell, finetuning_scheduler.adapters_builtin):
        for info in pkgutil.iter_modules(package.__path__, f"{package.__name__}."):
            if info.name not in _SKIP:
                names.append(info.name)
    return sorted([*names, "finetuning_scheduler._lazy"])


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert outcome.failed == 0, f"{outcome.failed} docstring example(s) failed in {module_name}"


def test_the_shell_has_docstring_examples() -> None:
    finder = doctest.DocTestFinder()
    examples = sum(len(test.examples) for name in _modules() for test in finder.find(importlib.import_module(name)))
    assert examples >= 20
