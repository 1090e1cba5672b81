"""Other trainers: the driver for hand-written loops (plain PyTorch, Lightning Fabric) and the Hugging Face
``Trainer`` callback (``integrations.hf``, which needs ``transformers``). No Lightning import; each is a thin client
of the phase engine, as the Lightning callback is.
"""

from ._wrappers import unwrap_module, unwrap_optimizer
from .driver import PhasePlateau, ScheduleDriver, ScheduleSource

__all__ = ["PhasePlateau", "ScheduleDriver", "ScheduleSource", "unwrap_module", "unwrap_optimizer"]
