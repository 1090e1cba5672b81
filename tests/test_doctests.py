"""The docstring examples of the shell, the built-in adapters and the facade's helper run, under installed names.

(The core's doctests are collected directly by pytest from core/; these packages import Lightning-backed modules
whose classes must not be loaded twice under a second name, so they are run here instead.) Every module listed here
must have examples: a module without any fails, so the list cannot silently run nothing.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import finetuning_scheduler.adapters_builtin
import finetuning_scheduler.shell

# Modules without examples of their own, each for a stated reason; everything else under the shell must have some.
_WITHOUT_EXAMPLES = {
    "finetuning_scheduler.shell.app": "a package docstring only",
    "finetuning_scheduler.shell.engine": "re-exports only",
    "finetuning_scheduler.shell.integrations": "re-exports only",
    "finetuning_scheduler.shell.lightning": "re-exports only",
    "finetuning_scheduler.shell.plugins": "re-exports only",
    "finetuning_scheduler.shell.schedule_files": "former module path, re-exports only",
    "finetuning_scheduler.shell.demo": "former module path, re-exports only",
    "finetuning_scheduler.shell._naming": "former module path, re-exports only",
    "finetuning_scheduler.shell.hf": "former module path, re-exports only (needs transformers)",
    "finetuning_scheduler.shell.torch_helpers": "former module path, re-exports only",
    "finetuning_scheduler.shell.integrations.hf": "needs the optional transformers extra; tested in tests/integrations",
    # Lightning callbacks and their wiring need a Trainer and a fit: real CPU fits in tests/shell exercise them.
    "finetuning_scheduler.shell.lightning._callbacks": "needs a Trainer: tests/shell/test_fts_behaviour.py",
    "finetuning_scheduler.shell.lightning._dependencies": "needs a Trainer: tests/shell/test_fts_behaviour.py",
    "finetuning_scheduler.shell.lightning._fts": "needs a Trainer: tests/shell",
    "finetuning_scheduler.shell.lightning._fit_steps": "needs a Trainer: tests/shell/test_fts_behaviour.py",
    "finetuning_scheduler.shell.lightning._schedule_setup": "needs a Trainer: tests/shell",
    "finetuning_scheduler.shell.lightning._views": "a Protocol and a Trainer accessor: tests/shell",
    "finetuning_scheduler.shell.app.demo": "a whole fine-tuning run: tests/shell/test_demo.py",
    "finetuning_scheduler.shell.app._console": "terminal output of the demo: tests/shell/test_demo.py",
    "finetuning_scheduler.shell.app._offline": "an adapter over a built model: tests/shell/test_cli.py",
    "finetuning_scheduler.shell.app.gen": "a command over a built model: tests/shell/test_cli.py",
    "finetuning_scheduler.shell.app.validate": "a command over a built model: tests/shell/test_cli.py",
    "finetuning_scheduler.adapters_builtin._fsdp": "an adapter for a strategy: tests/plugins",
    "finetuning_scheduler.adapters_builtin._model_parallel": "an adapter for a strategy: tests/plugins",
    "finetuning_scheduler.adapters_builtin._names": "an adapter over a module: tests/plugins/test_unwrapped_names.py",
}


def _packages_and_modules() -> list[str]:
    names = []
    for package in (finetuning_scheduler.shell, finetuning_scheduler.adapters_builtin):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name not in _WITHOUT_EXAMPLES:
                names.append(info.name)
    return sorted([*names, "finetuning_scheduler._lazy"])


@pytest.mark.parametrize("module_name", _packages_and_modules())
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert outcome.attempted > 0, f"{module_name} has no docstring examples: add one (or list it with a reason)"
    assert outcome.failed == 0, f"{outcome.failed} docstring example(s) failed in {module_name}"


def test_the_listed_modules_exist() -> None:
    for name in _WITHOUT_EXAMPLES:
        assert importlib.util.find_spec(name) is not None, name
