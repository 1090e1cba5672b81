"""Pausing the cyclic garbage collector around schedule resolution: a process-wide switch, so the caller's call.

The pure core builds a few hundred thousand small acyclic records for a 100k-parameter model; the collector would
walk them again and again for nothing (about 40% of the time, measured by ``python -m benchmarks``). The core
cannot know whether pausing it is welcome in the caller's process, so the shell decides, here, around its calls.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (reference counting still frees memory); its previous state
    is restored afterwards.

    >>> with collector_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


__all__ = ["collector_paused"]
