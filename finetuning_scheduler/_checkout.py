"""Running from a source checkout: find ``finetuning_scheduler.core``, ``.shell`` and ``.adapters_builtin`` in the
repository's top-level folders, as the installed package-dir mapping does.

With the repository root on ``sys.path`` (``python -c ...`` run there), the facade folder shadows the installed
package, and the three subpackages sit beside it rather than inside it. Only those three names are mapped.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

MAPPED = ("core", "shell", "adapters_builtin")


class CheckoutSubpackages:
    """A meta path finder for the three mapped subpackages of one checkout."""

    def __init__(self, package: str, root: Path) -> None:
        self.package, self.root = package, root

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The spec of ``{package}.core`` (and the other two) from the checkout; ``None`` for anything else."""
        parent, _, name = fullname.rpartition(".")
        if parent != self.package or name not in MAPPED:
            return None
        folder = self.root / name
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def map_checkout_subpackages(package: str, facade_file: str) -> None:
    """Install the finder when ``facade_file`` belongs to a checkout (never for an installed wheel)."""
    root = Path(facade_file).resolve().parent.parent
    is_checkout = (root / "core" / "_records.py").is_file() and (root / "pyproject.toml").is_file()
    if is_checkout and not any(isinstance(f, CheckoutSubpackages) for f in sys.meta_path):
        sys.meta_path.insert(0, CheckoutSubpackages(package, root))
