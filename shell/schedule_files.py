"""Former path of :mod:`finetuning_scheduler.shell.engine.schedule_files`, kept so existing imports work."""

from .engine.schedule_files import *  # noqa: F403 (the whole public surface, as listed by its __all__)
from .engine.schedule_files import __all__ as __all__
