"""Imports as a user runs them: from the repository root (the facade folder shadows the installed package there)
and from elsewhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = (
    "import finetuning_scheduler.core, sys; "
    "assert not {'torch', 'lightning'} & set(sys.modules), 'the core loaded torch or Lightning'; "
    "import importlib.util as u; "
    "assert u.find_spec('finetuning_scheduler.tests') is None, 'only core/shell/adapters_builtin are mapped'; "
    "import finetuning_scheduler.shell.engine.torch_helpers, finetuning_scheduler.adapters_builtin"
)


@pytest.mark.parametrize("cwd", [ROOT, Path("/")], ids=["repository root", "elsewhere"])
def test_the_core_imports_alone_and_only_the_mapped_folders_are_subpackages(cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
