"""Former path of :mod:`finetuning_scheduler.shell.lightning._naming`, kept so existing imports work."""

from .lightning._naming import *  # noqa: F403 (the whole public surface, as listed by its __all__)
from .lightning._naming import __all__ as __all__
