"""The adapter from docs/adapters.md's "minimal adapter" section, taken from the page and run in a real fit."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
from fts_support import fit_kwargs
from torch import nn

from finetuning_scheduler import FinetuningScheduler
from finetuning_scheduler.shell.lightning._hook_faults import AdapterHookError

PAGE = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"


class WithNorm(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        import torch

        self.body = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
        self.head = nn.Linear(8, 1)
        self.data = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))

    def training_step(self, batch: object, batch_idx: int) -> object:
        return self.head(self.body(batch)).pow(2).mean()  # type: ignore[arg-type]

    def train_dataloader(self) -> object:
        from torch.utils.data import DataLoader

        return DataLoader(self.data, batch_size=8)

    def configure_optimizers(self) -> object:
        import torch

        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.01)


@pytest.mark.parametrize("limit", [None, 20])
def test_the_guides_minimal_adapter_runs_in_a_fit(tmp_path: Path, limit: int | None) -> None:
    code = re.search(r"```python\n# my_adapters.py\n(.*?)```", PAGE.read_text(), re.DOTALL)
    assert code is not None
    (tmp_path / "my_adapters.py").write_text(code.group(1))
    sys.path.insert(0, str(tmp_path))
    try:
        schedule = {
            0: {"params": ["head.*"], "max_transition_epoch": 1},
            1: {"params": ["body.*"], "max_transition_epoch": 3},
        }
        fts = FinetuningScheduler(
            ft_schedule=schedule,
            epoch_transitions_only=True,
            custom_strategy_adapters={"single_device": "my_adapters:TrainableBudget"},
            strategy_adapter_cfg={"limit": limit},
        )
        trainer = pl.Trainer(callbacks=[fts], **fit_kwargs(tmp_path, max_epochs=3, limit_val_batches=0))
        if limit is not None:  # the head has 9 elements, head and body 81: phase 1 is over the budget
            with pytest.raises(
                AdapterHookError, match="phase 1 would train 81 elements, over the limit of 20"
            ) as raised:
                trainer.fit(WithNorm())
            assert raised.value.hook == "on_trainable_changed" and isinstance(raised.value.__cause__, RuntimeError)
            return
        trainer.fit(WithNorm())
        adapter = fts.strategy_adapter
        assert type(adapter).__name__ == "TrainableBudget"
        assert adapter.log == [(1, 81)]  # after the one phase change
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_adapters", None)
