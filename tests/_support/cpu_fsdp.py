"""Lightning's FSDPStrategy (FSDP1) on CPU processes over gloo, for tests only.

Lightning refuses ``FSDPStrategy`` without CUDA, but only for the class itself: a subclass passes. On CPU three
things then need the overrides below: FSDP must be given ``device_id=cpu`` (Lightning passes the device index,
``None`` on CPU), and full state dicts must not be "offloaded to CPU" (on a CPU compute device that frees the
storage the unsharded views point at, and skips the copy of gathered optimizer state). Full optimizer state keeps
parameter-name keys (Lightning's re-keying to ids fails for flat parameters; with ``use_orig_params=False`` the
FSDP adapter installs its own fix, which is the code that runs then); Lightning's loading accepts them.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn


class CPUFSDPStrategy(FSDPStrategy):
    def _setup_model(self, model: nn.Module) -> nn.Module:
        from torch.distributed.fsdp import FullyShardedDataParallel

        if self.root_device.type != "cpu" or any(isinstance(m, FullyShardedDataParallel) for m in model.modules()):
            return super()._setup_model(model)
        return FullyShardedDataParallel(
            module=model,
            cpu_offload=self.cpu_offload,
            mixed_precision=self.mixed_precision_config,
            sharding_strategy=self.sharding_strategy,
            device_id=torch.device("cpu"),
            **self.kwargs,
        )

    def _full_state_context(self) -> Any:
        from torch.distributed.fsdp import (
            FullOptimStateDictConfig,
            FullStateDictConfig,
            FullyShardedDataParallel,
            StateDictType,
        )

        return FullyShardedDataParallel.state_dict_type(
            self.model,
            StateDictType.FULL_STATE_DICT,
            FullStateDictConfig(offload_to_cpu=False, rank0_only=True),
            FullOptimStateDictConfig(offload_to_cpu=False, rank0_only=True),
        )

    def lightning_module_state_dict(self) -> dict[str, Any]:
        if self._state_dict_type != "full" or self.root_device.type != "cpu":
            return super().lightning_module_state_dict()
        with self._full_state_context():
            return dict(self.model.state_dict())

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        from torch.distributed.fsdp import FullyShardedDataParallel

        if self._state_dict_type != "full" or self.root_device.type != "cpu":
            return super().optimizer_state(optimizer)
        with self._full_state_context():
            return dict(
                FullyShardedDataParallel.optim_state_dict(self.model, getattr(optimizer, "_optimizer", optimizer))
            )
