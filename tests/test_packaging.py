"""Imports as a user runs them: from the repository root and from elsewhere.

No folder of the checkout is named ``finetuning_scheduler`` (the facade lives in ``facade/``, mapped like ``core/``,
``shell/`` and ``adapters_builtin/``), so from the root the installed package is found whole, with no import hook.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh interpreters in subprocesses

ROOT = Path(__file__).resolve().parents[1]
CHECK = (
    "import finetuning_scheduler.core, sys; "
    "assert not {'torch', 'lightning'} & set(sys.modules), 'the core loaded torch or Lightning'; "
    "import importlib.util as u; "
    "assert u.find_spec('finetuning_scheduler.tests') is None, 'only facade/core/shell/adapters_builtin are mapped'; "
    "hooks = [f for f in sys.meta_path if type(f).__module__.startswith('finetuning_scheduler')]; "
    "assert not hooks, f'the package installed an import hook: {hooks}'; "
    "import finetuning_scheduler.shell.engine.torch_helpers, finetuning_scheduler.adapters_builtin"
)


@pytest.mark.parametrize("cwd", [ROOT, Path("/")], ids=["repository root", "elsewhere"])
def test_the_core_imports_alone_and_only_the_mapped_folders_are_subpackages(cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_no_checkout_folder_shadows_the_package() -> None:
    assert not (ROOT / "finetuning_scheduler").exists()
    assert (ROOT / "facade" / "__init__.py").is_file()
