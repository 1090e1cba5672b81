"""TransformerLens-style parameter names for Hugging Face GPT-2 models in fine-tuning schedules.

Registered as the strategy adapter ``transformerlens_gpt2`` (entry-point group
``finetuning_scheduler.strategy_adapters``). The adapter class is imported only when a user selects it.
"""

from ._gpt2 import gpt2_tl_bindings

__all__ = ["gpt2_tl_bindings"]
