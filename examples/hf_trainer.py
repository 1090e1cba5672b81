"""Fine-tune a Hugging Face model in phases inside ``transformers.Trainer``, through a ``TrainerCallback``.

Run it with ``python examples/hf_trainer.py`` (CPU, seconds; needs ``pip install -e '.[hf]'``).
The model is a tiny GPT-2 built from a config, trained on random tokens: nothing is downloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

from finetuning_scheduler import EpochTrace
from finetuning_scheduler.shell.integrations.hf import FinetuningCallback

# Phase 0: the last block and the final norm; phase 1: the first block; phase 2: the embeddings.
SCHEDULE: dict[int, Any] = {
    0: {"params": ["transformer.h.1.*", "transformer.ln_f.*"], "max_transition_epoch": 1},
    1: {"params": ["transformer.h.0.*"], "lr": 1e-3, "max_transition_epoch": 2},
    2: {"params": ["transformer.w[tp]e.*"], "lr": 1e-4, "max_transition_epoch": 3},
}


def tiny_gpt2() -> GPT2LMHeadModel:
    config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=16, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config)


def train(
    schedule: Any = SCHEDULE,
    epochs: int = 4,
    log: Callable[[str], Any] = print,
    callbacks: Sequence[TrainerCallback] = (),
    **args: Any,
) -> tuple[FinetuningCallback, Trainer]:
    """Train the tiny model phase by phase; returns the callback (its ``traces``) and the Trainer.

    ``callbacks`` run after the scheduler's, so they see each epoch's new phase; ``args`` override the
    ``TrainingArguments``.
    """
    torch.manual_seed(0)
    model = tiny_gpt2()
    tokens = torch.randint(0, 100, (32, 16), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": row, "labels": row} for row in tokens]

    def show(trace: EpochTrace) -> None:
        lrs = ", ".join(f"{lr:.2g}" for lr in trace.lrs)
        log(f"epoch {trace.epoch}: phase {trace.depth}, {len(trace.trainable)} trainable, lrs at start [{lrs}]")

    # Create the callback before training: it freezes the model, so the Trainer's optimizer holds phase 0 only.
    callback = FinetuningCallback(model, schedule, on_trace=show)
    with tempfile.TemporaryDirectory() as output_dir:
        settings: dict[str, Any] = {
            "output_dir": output_dir,
            "num_train_epochs": epochs,
            "per_device_train_batch_size": 8,
            "learning_rate": 5e-3,
            "weight_decay": 0.01,
            "use_cpu": True,
            "report_to": [],
            "save_strategy": "no",
            "logging_strategy": "no",
            "disable_tqdm": True,
            **args,
        }
        trainer = Trainer(
            model=model, args=TrainingArguments(**settings), train_dataset=data, callbacks=[callback, *callbacks]
        )
        trainer.train()
    return callback, trainer


if __name__ == "__main__":
    train()
