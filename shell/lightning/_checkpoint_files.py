"""A checkpoint file that cannot be read is one clear error, not a traceback from inside torch's zip reader.

torch writes checkpoints as zip archives, whose directory is at the end of the file: a file cut off mid-write (a
crash on a filesystem without atomic renames, a full disk, an interrupted copy) has none. Lightning reads the
checkpoint of ``fit(ckpt_path=...)`` through ``strategy.load_checkpoint`` before any callback hook sees it, so the
callback routes that method through :func:`read_or_explain` for the fit, as it routes model loading.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.strategies import Strategy

from ..engine import CheckpointReadError


def unreadable_reason(path: Path) -> str | None:
    """Why ``path`` is not a complete torch checkpoint, or ``None`` when it looks like one (a whole zip archive).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     cut = Path(folder, "cut.ckpt")
    ...     _ = cut.write_bytes(b"PK\\x03\\x04" + bytes(100))
    ...     print(unreadable_reason(cut)[:60])
    it is not a whole zip archive (torch's checkpoint format): i
    """
    size = path.stat().st_size
    if size == 0:
        return "it is empty"
    if zipfile.is_zipfile(path):
        return None
    return (
        "it is not a whole zip archive (torch's checkpoint format): it was cut off mid-write (a crash, a full disk, "
        "an interrupted copy), or it is not a checkpoint"
    )


def _others(path: Path) -> str:
    found = sorted(
        (p for p in path.parent.glob("*.ckpt") if p != path and unreadable_reason(p) is None),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    if not found:
        return "no other readable checkpoint is in its folder"
    shown = ", ".join(p.name for p in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return f"readable checkpoints in the same folder, newest first: {shown}"


def _held(checkpoint: object) -> str:
    if isinstance(checkpoint, Mapping):
        keys = ", ".join(repr(key) for key in list(checkpoint)[:5])
        return f"a dict with keys {keys}" + (" ..." if len(checkpoint) > 5 else "") if checkpoint else "an empty dict"
    return f"a {type(checkpoint).__name__}"


def read_or_explain(load: Callable[..., Any], checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
    """``load(checkpoint_path, ...)``; when it fails on a local file that is not a whole checkpoint, or the file
    holds something other than a Lightning checkpoint (what ``torch.save`` wrote, not a Trainer), one
    :class:`CheckpointReadError` naming the file, what is wrong and what to resume from instead. Any other failure
    (a whole archive torch refuses, a remote path) is raised as it was."""
    path = Path(os.fspath(checkpoint_path)) if isinstance(checkpoint_path, str | os.PathLike) else None
    local_file = path is not None and path.is_file()
    try:
        checkpoint = load(checkpoint_path, *args, **kwargs)
    except Exception as exc:
        reason = unreadable_reason(path) if path is not None and local_file else None
        if path is None or reason is None:
            raise
        raise CheckpointReadError(
            f"Cannot read the checkpoint {path} ({path.stat().st_size:,} bytes): {reason}. Resume from another "
            f"checkpoint ({_others(path)}). torch said: {type(exc).__name__}: {exc}"
        ) from None
    if path is not None and local_file and not (isinstance(checkpoint, Mapping) and LIGHTNING_KEY in checkpoint):
        raise CheckpointReadError(
            f"The file {path} is not a Lightning checkpoint: it holds {_held(checkpoint)}, without "
            f"{LIGHTNING_KEY!r} (torch.save wrote it, not a Trainer). Resume from a checkpoint a Trainer saved "
            f"({_others(path)})."
        )
    return checkpoint


LIGHTNING_KEY = "pytorch-lightning_version"
"""Every checkpoint a Trainer writes has it, and Lightning's resume reads it first."""


def route_checkpoint_reading(strategy: Strategy, patched_marker: str) -> None:
    """Make ``strategy.load_checkpoint`` explain unreadable files for this fit (``unpatch`` undoes it)."""
    original = strategy.load_checkpoint
    if getattr(original, patched_marker, False):
        return

    def load_checkpoint(checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
        return read_or_explain(original, checkpoint_path, *args, **kwargs)

    setattr(load_checkpoint, patched_marker, True)
    strategy.load_checkpoint = load_checkpoint  # type: ignore[method-assign]


__all__ = ["read_or_explain", "route_checkpoint_reading", "unreadable_reason"]
