"""Former path of :mod:`finetuning_scheduler.shell.integrations.hf`, kept so existing imports work."""

from .integrations.hf import *  # noqa: F403 (the whole public surface, as listed by its __all__)
from .integrations.hf import __all__ as __all__
