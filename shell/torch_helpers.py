"""Former path of :mod:`finetuning_scheduler.shell.engine.torch_helpers`, kept so existing imports work."""

from .engine.torch_helpers import *  # noqa: F403 (the whole public surface, as listed by its __all__)
from .engine.torch_helpers import __all__ as __all__
