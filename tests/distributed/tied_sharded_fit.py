"""A GPT-2-style model (token embedding tied to the output head) fine-tuned in three phases with ``restore_best``,
sharded by the ModelParallelStrategyAdapter's ``fsdp_plan`` (FSDP2; no ``configure_model`` of its own).

Usage: ``tied_sharded_fit.py OUT_DIR NAME DEVICES [RESUME_FROM]``. ``FTS_TEST_STRATEGY=fsdp1`` (or ``fsdp1-flat``,
with ``use_orig_params=False``) runs the same fit through FSDP1 instead, one unit per block. Rank 0 writes
``NAME.json`` (transitions, groups); ``NAME_rank{r}.pt`` holds the whole, unsharded weights (FSDP2: every rank;
FSDP1: rank 0). Checkpoints go to ``OUT_DIR/NAME_ck`` (or, when resuming, are read from the folder given).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import FSDPStrategy, ModelParallelStrategy, Strategy
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_support"))
from cpu_fsdp import CPUFSDPStrategy
from fts_support import RandomDataset, run_and_exit

from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

VOCAB, WIDTH, TOKENS = 48, 16, 8
SCHEDULE = {
    0: {"params": ["model.lm_head.weight", "model.ln_f.*"], "max_transition_epoch": 2},  # the head: tied to wte
    1: {"params": ["model.blocks.1.*"], "lr": 0.02, "max_transition_epoch": 4},
    2: {"params": ["model.blocks.0.*"], "lr": 0.01},
}
PLANS = {  # FTS_TEST_PLAN
    "plain": {r"model\.blocks\.\d+$": {}, "model": {}},
    "act_ckpt": {
        r"model\.blocks\.0$": {"act_ckpt": ["wrapped"]},
        r"model\.blocks\.1$": {"act_ckpt": ["composable"]},
        "model": {},
    },
    "split_tie": {"model.lm_head": {}, "model": {}},  # shards the head apart from the embedding it is tied to
}


class TinyGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wte = nn.Embedding(VOCAB, WIDTH)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.Tanh()) for _ in range(2))
        self.ln_f = nn.LayerNorm(WIDTH)
        self.lm_head = nn.Linear(WIDTH, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.wte(tokens)
        for block in self.blocks:
            hidden = hidden + block(hidden)
        return self.lm_head(self.ln_f(hidden))


class TiedLM(pl.LightningModule):
    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.model = TinyGPT()
        self.batch_size = batch_size

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        tokens = (batch[:, :TOKENS].abs() * 10).long() % VOCAB
        logits = self.model(tokens[:, :-1])
        return nn.functional.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self._loss(batch)

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), sync_dist=True)

    def train_dataloader(self) -> DataLoader[torch.Tensor]:
        return DataLoader(RandomDataset(TOKENS, 32, seed=1), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader[torch.Tensor]:
        return DataLoader(RandomDataset(TOKENS, 16, seed=2), batch_size=self.batch_size)

    def configure_optimizers(self) -> Any:
        # The wrapped model's parameters: FSDP1 with use_orig_params=False holds flat ones (FSDP2 wraps in place).
        params = [p for p in self.trainer.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=0.05, weight_decay=0.0)


def _strategy(kind: str, devices: int) -> tuple[Strategy, dict[str, Any]]:
    """The strategy and the adapter's options: FSDP2 through the plan, or FSDP1 (one unit per block; the tied
    embedding and head in the root unit), with original or flat parameters."""
    if kind == "fsdp2":
        plan = PLANS[os.environ.get("FTS_TEST_PLAN", "plain")]
        return ModelParallelStrategy(data_parallel_size=devices, tensor_parallel_size=1), {"fsdp_plan": plan}
    fsdp = FSDPStrategy if os.environ.get("FTS_TEST_ACCELERATOR") == "cuda" else CPUFSDPStrategy
    return fsdp(auto_wrap_policy={nn.Sequential}, use_orig_params=kind == "fsdp1"), {}


def main(out: Path, name: str, devices: int, resume_from: str | None) -> None:
    pl.seed_everything(7)
    kind = os.environ.get("FTS_TEST_STRATEGY", "fsdp2")
    strategy, adapter_cfg = _strategy(kind, devices)
    fts = FinetuningScheduler(ft_schedule=SCHEDULE, strategy_adapter_cfg=adapter_cfg)
    ckpt_dir = out / f"{name}_ck"
    trainer = pl.Trainer(
        accelerator=os.environ.get("FTS_TEST_ACCELERATOR", "cpu"),  # tests/gpu runs it on one CUDA device
        devices=devices,
        strategy=strategy,
        max_epochs=6,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(out),
        callbacks=[
            fts,
            FTSEarlyStopping(monitor="val_loss", patience=3),
            FTSCheckpoint(monitor="val_loss", dirpath=ckpt_dir, save_top_k=-1, filename="{epoch}"),
        ],
    )
    model = TiedLM(batch_size=4 // devices)  # the same global batch whatever the number of processes
    trainer.fit(model, ckpt_path=resume_from)
    if kind == "fsdp2":
        full = {key: value.full_tensor().detach() for key, value in model.state_dict().items()}
    else:
        full = trainer.strategy.lightning_module_state_dict()  # gathered on rank 0
    torch.save(full, out / f"{name}_rank{trainer.global_rank}.pt")
    if trainer.is_global_zero:
        result = {
            "tied": torch.equal(full["model.lm_head.weight"], full["model.wte.weight"]),
            "history": [(change.epoch, change.depth, change.restored_best) for change in fts.transition_history],
            "groups": [len(group["params"]) for group in trainer.optimizers[0].param_groups],
            "sharded": sorted(type(param).__name__ for param in trainer.model.parameters())[0],
            # In schedule names, through the adapter (FSDP1's flat parameters stand for every name they hold).
            "trainable": sorted(fts.strategy_adapter.logical_param_translation(list(fts.trainable()))),
        }
        (out / f"{name}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    run_and_exit(main, Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
