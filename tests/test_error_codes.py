"""docs/errors.md stays complete: every diagnostic code the package can report is explained there, and the page
lists no code the package no longer has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "core", ROOT / "shell", ROOT / "adapters_builtin"]
# error("code", ...), warning("code", ...), (warning if x else error)("code", ...), code="code"
CODE = re.compile(r'(?:\b(?:error|warning)\(\s*|\)\(|code=)"([a-z][a-z0-9]*(?:-[a-z0-9]+)+)"')


def _codes_in_source() -> set[str]:
    return {m.group(1) for folder in SOURCES for path in folder.rglob("*.py") for m in CODE.finditer(path.read_text())}


def _codes_in_page() -> set[str]:
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", (ROOT / "docs" / "errors.md").read_text(), flags=re.MULTILINE)
    return set(rows)


def test_every_code_the_package_reports_is_explained() -> None:
    missing = _codes_in_source() - _codes_in_page()
    assert not missing, f"add these codes to docs/errors.md: {sorted(missing)}"


def test_the_page_explains_no_code_that_is_gone() -> None:
    stale = _codes_in_page() - _codes_in_source()
    assert not stale, f"docs/errors.md lists codes the package no longer reports: {sorted(stale)}"
