"""Former path of :mod:`finetuning_scheduler.shell.integrations.driver`, kept so existing imports work."""

from .integrations.driver import *  # noqa: F403 (the whole public surface, as listed by its __all__)
from .integrations.driver import __all__ as __all__
