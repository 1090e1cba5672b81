"""Real entry points for plugin tests: distributions written as ``*.dist-info`` folders into a directory on sys.path.

Nothing in ``importlib.metadata`` is patched: discovery reads these folders exactly as it reads pip-installed ones.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from finetuning_scheduler.core import ENTRY_POINT_GROUP


class Site:
    """A directory on ``sys.path`` into which tests install small distributions."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self._monkeypatch = monkeypatch
        self.roots = [root]
        monkeypatch.syspath_prepend(str(root))

    def new_root(self) -> Path:
        """Another directory, put on sys.path after the first ones (a second site-packages)."""
        root = self.root.parent / f"site{len(self.roots)}"
        root.mkdir()
        self.roots.append(root)
        self._monkeypatch.setattr(sys, "path", [*sys.path, str(root)])
        return root

    def install(
        self,
        dist: str,
        version: str,
        entry_points: dict[str, str] | None = None,
        modules: dict[str, str] | None = None,
        entry_points_text: str | None = None,
        root: Path | None = None,
    ) -> None:
        """Write ``{dist}-{version}.dist-info`` (METADATA, entry_points.txt) and the given module sources."""
        target = root or self.root
        info = target / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
        if entry_points_text is None:
            lines = "".join(f"{name} = {value}\n" for name, value in (entry_points or {}).items())
            entry_points_text = f"[{ENTRY_POINT_GROUP}]\n{lines}"
        (info / "entry_points.txt").write_text(entry_points_text, encoding="utf-8")
        for module, source in (modules or {}).items():
            (target / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")

    def owns(self, module_name: str) -> bool:
        """Whether a loaded module came from one of this site's directories."""
        file = getattr(sys.modules.get(module_name), "__file__", None) or ""
        return any(file.startswith(str(root)) for root in self.roots)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A fresh plugin directory on sys.path; modules imported from it are forgotten afterwards."""
    root = tmp_path / "site0"
    root.mkdir()
    installed = Site(root, monkeypatch)
    yield installed
    for name in [name for name in sys.modules if installed.owns(name)]:
        del sys.modules[name]


GOOD_ADAPTERS = """
    from finetuning_scheduler.strategy_adapters import StrategyAdapter


    class GoodAdapter(StrategyAdapter):
        def __init__(self, alpha: int = 1, use_tl_names: bool = False) -> None:
            super().__init__()
            self.alpha = alpha
            self.use_tl_names = use_tl_names


    class FussyAdapter(StrategyAdapter):
        def __init__(self, mode: str = "a") -> None:
            super().__init__()
            if mode not in ("a", "b"):
                raise ValueError(f"mode must be 'a' or 'b', got {mode!r}")


    class NotAnAdapter:
        pass
"""


@pytest.fixture
def good_site(site: Site) -> Site:
    """A site with one good plugin distribution (``good-plugins 1.0``) registering three entry points."""
    site.install(
        "good-plugins",
        "1.0",
        {
            "GoodOne": "good_plugin_mod:GoodAdapter",
            "fussy": "good_plugin_mod:FussyAdapter",
            "notadapter": "good_plugin_mod:NotAnAdapter",
        },
        {"good_plugin_mod": GOOD_ADAPTERS},
    )
    return site


PLUGIN_SOURCE = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "fts_tl_names"


@pytest.fixture(scope="session")
def tl_plugin_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed (offline, from a copy of its source) into a private target directory."""
    source = tmp_path_factory.mktemp("tl_plugin_src") / "fts_tl_names"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("tl_plugin_site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*command, "--target", str(target), str(source)], check=True, capture_output=True)
    return target


@pytest.fixture
def tl_plugin(tl_plugin_target: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The installed example plugin, visible on sys.path for this test."""
    pytest.importorskip("transformers")
    monkeypatch.syspath_prepend(str(tl_plugin_target))
    return tl_plugin_target
