"""Former path of :mod:`finetuning_scheduler.shell.app.demo`, kept so existing imports work."""

from .app.demo import SCHEDULE, SUMMARY, add_arguments, main, run

__all__ = ["SCHEDULE", "SUMMARY", "add_arguments", "main", "run"]
