"""Errors and warnings as values: where a problem is, what it is, and how to fix it."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

Key = int | str
"""One step of a path into a schedule: a phase index, a key, or a list index."""


class Severity(enum.Enum):
    """How serious a diagnostic is: errors stop training, warnings are reported and training goes on."""

    ERROR = "error"
    WARNING = "warning"


@attrs.frozen
class Position:
    """A place in a YAML source, 1-based as editors show it.

    Attributes:
        line: 1-based line number.
        column: 1-based column number.
    """

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


@attrs.frozen
class Location:
    """Where in a schedule a diagnostic applies.

    Attributes:
        phase: the phase index, or ``None`` for the schedule as a whole.
        key: the phase key (``params``, ``lr``, ...), or ``None`` for the whole phase.
        index: the list index inside ``key`` (an entry of ``params``), or ``None``.
        subpath: further keys below ``key`` (inside ``new_optimizer`` blocks, say).
    """

    phase: int | None = None
    key: str | None = None
    index: int | None = None
    subpath: tuple[Key, ...] = ()

    @property
    def path(self) -> tuple[Key, ...]:
        """The location as a tuple of keys, outermost first.

        >>> Location(2, "params", 1).path
        (2, 'params', 1)
        """
        steps: list[Key | None] = [self.phase, self.key, self.index, *self.subpath]
        return tuple(step for step in steps if step is not None)

    def __str__(self) -> str:
        """A human-readable location.

        >>> str(Location(2, "params", 1))
        'phase 2 › params[1]'
        >>> str(Location())
        'schedule'
        >>> str(Location(None, "reinit_lr_cfg", subpath=("pl_lrs_cfg",)))  # a constructor argument, not the file
        'reinit_lr_cfg.pl_lrs_cfg'
        """
        if self.phase is None:
            return "schedule" if self.key is None else self.key + "".join(f".{step}" for step in self.subpath)
        text = f"phase {self.phase}"
        if self.key is not None:
            text += f" › {self.key}"
        if self.index is not None:
            text += f"[{self.index}]"
        return text + "".join(f".{step}" for step in self.subpath)


@attrs.frozen
class Diagnostic:
    """One problem found in a schedule (or in the configuration around it).

    Attributes:
        code: a stable, kebab-case identifier (``no-match``, ``unknown-key``, ...), for tests and tooling.
        message: what is wrong, in one sentence.
        location: where in the schedule.
        severity: error or warning.
        hint: how to fix it, when there is something useful to say.
        position: the source position (line, column) when the schedule came from a file.
        source: the file name, when known.
        related: the other place a problem about two places names (the first phase thawing a parameter), and
            ``related_position`` its position.
    """

    code: str
    message: str
    location: Location = Location()
    severity: Severity = Severity.ERROR
    hint: str | None = None
    position: Position | None = None
    source: str | None = None
    related: Location | None = None
    related_position: Position | None = None

    @property
    def is_error(self) -> bool:
        """Whether this diagnostic stops training."""
        return self.severity is Severity.ERROR

    def render(self) -> str:
        """Format as one line: ``file:line:col: error[code] phase 1 › lr: message (hint)``.

        >>> Diagnostic("no-match", "'x' matched nothing", Location(1, "params", 0),
        ...            position=Position(3, 5), source="s.yaml").render()
        "s.yaml:3:5: error[no-match] phase 1 › params[0]: 'x' matched nothing"
        """
        where = ":".join(str(part) for part in (self.source, self.position) if part is not None)
        prefix = f"{where}: " if where else ""
        text = f"{prefix}{self.severity.value}[{self.code}] {self.location}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


Diagnostics = tuple[Diagnostic, ...]
"""A collection of diagnostics, in the order the checks found them."""


def error(code: str, message: str, location: Location = Location(), hint: str | None = None) -> Diagnostic:
    """Build an error diagnostic.

    >>> error("x", "bad").is_error
    True
    """
    return Diagnostic(code, message, location, Severity.ERROR, hint)


def warning(code: str, message: str, location: Location = Location(), hint: str | None = None) -> Diagnostic:
    """Build a warning diagnostic.

    >>> warning("x", "odd").is_error
    False
    """
    return Diagnostic(code, message, location, Severity.WARNING, hint)


def errors_only(diagnostics: Iterable[Diagnostic]) -> Diagnostics:
    """Keep the errors.

    >>> errors_only([error("a", "x"), warning("b", "y")])[0].code
    'a'
    """
    return tuple(d for d in diagnostics if d.is_error)


def warnings_only(diagnostics: Iterable[Diagnostic]) -> Diagnostics:
    """Keep the warnings.

    >>> warnings_only([error("a", "x"), warning("b", "y")])[0].code
    'b'
    """
    return tuple(d for d in diagnostics if not d.is_error)


def render_all(diagnostics: Iterable[Diagnostic]) -> str:
    """Render several diagnostics, one per line (hints indented below).

    >>> print(render_all([error("a", "x"), warning("b", "y")]))
    error[a] schedule: x
    warning[b] schedule: y
    """
    return "\n".join(d.render() for d in diagnostics)
