"""Reading and writing schedule files, and their names. No Lightning import: usable from any trainer."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from returns.result import Failure, Result

from finetuning_scheduler.core import Diagnostics, RawSchedule, Schedule, dump_schedule, error, parse_yaml


def read_schedule(path: str | os.PathLike[str]) -> Result[RawSchedule, Diagnostics]:
    """Read a YAML schedule file, keeping node positions so errors can cite ``file:line:col``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        message = f"Could not find specified fine-tuning scheduling file '{file}': {exc.strerror or exc}"
        return Failure((error("schedule-file", message, hint="check the path given as ft_schedule"),))
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        message = (
            f"the schedule file '{file}' is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} on line {line} "
            f"(offset {exc.start})"
        )
        return Failure((error("schedule-file", message, hint="save the file as UTF-8 (YAML schedules are text)"),))
    return parse_yaml(text, str(file))


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def schedule_file_name(module: object) -> str:
    """The file name of a module's schedule in ``log_dir``, as FTS names it: ``{ModuleClass}_ft_schedule.yaml``.

    >>> class Classifier: ...
    >>> schedule_file_name(Classifier())
    'Classifier_ft_schedule.yaml'
    """
    return f"{type(module).__name__}_ft_schedule.yaml"


def write_schedule(schedule: Schedule, path: str | os.PathLike[str]) -> Path:
    """Write a schedule as stable, readable YAML (atomically)."""
    return write_text_atomically(path, dump_schedule(schedule))


__all__ = ["read_schedule", "schedule_file_name", "write_schedule", "write_text_atomically"]
