"""Former path of :mod:`finetuning_scheduler.shell.integrations.driver`, kept so existing imports work.

>>> from finetuning_scheduler.shell.driver import ScheduleDriver
>>> ScheduleDriver.__module__
'finetuning_scheduler.shell.integrations.driver'
>>> import finetuning_scheduler; finetuning_scheduler.ScheduleDriver is ScheduleDriver
True
"""

from .integrations.driver import *  # noqa: F403 (the whole public surface, as listed by its __all__)
from .integrations.driver import __all__ as __all__
