"""A GPT-2-sized model (12 layers, width 768, tied embedding and head: about 124M parameters) fine-tuned on one
CUDA device through three phases, beside the same fit without a scheduler (everything trainable): peak memory and
median step time per phase. Prints a table and writes ``OUT_DIR/gpt2_phases.json``.

Usage: ``gpt2_phases.py OUT_DIR`` (run by ``tests/gpu/run.sh``; about a minute on a recent GPU).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from finetuning_scheduler import FinetuningScheduler

VOCAB, WIDTH, LAYERS, TOKENS, BATCH, STEPS = 50257, 768, 12, 256, 8, 12
SCHEDULE = {
    0: {"params": ["lm.lm_head.weight", "lm.ln_f.*"], "max_transition_epoch": 1},
    1: {"params": [r"lm\.blocks\.(8|9|10|11)\..*"], "lr": 1e-4, "max_transition_epoch": 2},
    2: {"params": [r"lm\.blocks\.[0-7]\..*", "lm.wpe.*"], "lr": 5e-5},
}


class GPT2Sized(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, WIDTH), nn.Embedding(TOKENS, WIDTH)
        layer = nn.TransformerEncoderLayer(WIDTH, 12, 4 * WIDTH, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False).layers
        self.ln_f = nn.LayerNorm(WIDTH)
        self.lm_head = nn.Linear(WIDTH, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1], device=tokens.device))
        mask = nn.Transformer.generate_square_subsequent_mask(tokens.shape[1], device=tokens.device)
        for block in self.blocks:
            hidden = block(hidden, src_mask=mask, is_causal=True)
        return self.lm_head(self.ln_f(hidden))


class LM(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lm = GPT2Sized()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        tokens = batch[0]
        logits = self.lm(tokens[:, :-1])
        return nn.functional.cross_entropy(logits.reshape(-1, VOCAB).float(), tokens[:, 1:].reshape(-1))

    def train_dataloader(self) -> DataLoader[Any]:
        data = torch.randint(0, VOCAB, (BATCH * STEPS, TOKENS), generator=torch.Generator().manual_seed(0))
        return DataLoader(TensorDataset(data), batch_size=BATCH)

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=3e-4)


class PhaseMeter(pl.Callback):
    """Per epoch: peak allocated memory and the median step time (CUDA-synchronised)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._times: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self._times = []

    def on_train_batch_start(self, *args: Any) -> None:
        torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        torch.cuda.synchronize()
        self._times.append(time.perf_counter() - self._start)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        self.rows.append(
            {
                "epoch": trainer.current_epoch,
                "trainable_M": round(trainable / 1e6, 2),
                "peak_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 3),
                "step_ms": round(1000 * statistics.median(self._times[2:] or self._times), 1),
            }
        )


def _fit(out: Path, scheduled: bool) -> list[dict[str, Any]]:
    pl.seed_everything(0)
    meter = PhaseMeter()
    callbacks: list[pl.Callback] = [meter]
    if scheduled:
        callbacks.insert(0, FinetuningScheduler(ft_schedule=SCHEDULE, epoch_transitions_only=True))
    trainer = pl.Trainer(
        accelerator="cuda",
        devices=1,
        precision="bf16-mixed",
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(out),
        callbacks=callbacks,
    )
    trainer.fit(LM())
    return meter.rows


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = {"scheduled": _fit(out, True), "full_fine_tune": _fit(out, False)}
    print(f"{'run':<16}{'epoch (phase)':>14}{'trainable M':>13}{'peak GiB':>10}{'step ms':>9}")
    for run, rows in results.items():
        for row in rows:
            print(f"{run:<16}{row['epoch']:>14}{row['trainable_M']:>13}{row['peak_GiB']:>10}{row['step_ms']:>9}")
    (out / "gpt2_phases.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
