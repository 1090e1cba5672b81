"""Former path of :mod:`finetuning_scheduler.shell.integrations.hf`, kept so existing imports work."""

from .integrations.hf import FinetuningCallback, decay_parameter_names

__all__ = ["FinetuningCallback", "decay_parameter_names"]
