"""A Griffe extension for the API reference: docstring examples (``>>>`` sessions) are shown as code.

The package's docstrings carry their examples as bare doctest sessions (run by the test suite); rendered as
Markdown, their output (``['a', 'b']``) would read as link syntax. This wraps each session in a fenced block.
"""

from __future__ import annotations

from typing import Any

import griffe


def _fenced(text: str) -> str:
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        starts = line.lstrip().startswith(">>>")
        if starts and not inside:
            out.append("```pycon")
            inside = True
        elif inside and not line.strip():
            out.append("```")
            inside = False
        out.append(line)
    if inside:
        out.append("```")
    return "\n".join(out)


class DoctestsAsCode(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = _fenced(obj.docstring.value)
