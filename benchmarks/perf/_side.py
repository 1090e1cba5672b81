"""One side of the whole-fit benchmark: run by the runner under this project's venv or under FTS 2.14.1's.

``python _side.py '{"task": ..., ...}'`` runs one task and prints its result as the last line of stdout (JSON).
Only the public API is used (``from finetuning_scheduler import FinetuningScheduler, FTSEarlyStopping,
FTSCheckpoint``), so whichever package the interpreter finds is measured. ``"scheduler": false`` measures plain
Lightning with its default checkpointing, the baseline every scheduler figure is compared to.

Tasks (every timing is wall time with ``time.perf_counter``; the model is built before the clock starts):

- ``fit``: callbacks + ``Trainer`` + one-epoch ``fit`` of a :func:`moe_names` model, implicit or regex schedule,
  ``runs`` times without and with the scheduler, interleaved.
- ``transition``: a two-epoch fit whose phase 0 ends after epoch 0; the time of epoch 1's ``on_train_epoch_start``
  callbacks (thaw, new param groups, LR-scheduler extension, restore of the best checkpoint).
- ``steps``: training steps per second of a small MLP over one epoch (first 50 steps excluded), ``runs`` times
  without and with the scheduler, interleaved.
- ``memory``: peak resident memory of the training steps of a one-epoch fit of a 256 MB MLP over the RSS before it
  (and with the checkpoint written at the epoch's end), and whether frozen parameters hold gradients or optimizer
  state once the steps are done.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from _layout import moe_names, regex_phases  # the script's own folder is on sys.path
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

WIDTH = 8


class Inventory(LightningModule):
    """A module with the parameter names of :func:`moe_names`; only the head (norm + lm_head) is in the forward
    pass, so the fit's cost is the scheduler's per-tensor bookkeeping, not arithmetic."""

    def __init__(self, size: int) -> None:
        super().__init__()
        containers: dict[str, nn.Module] = {"": self}
        for name in moe_names(size):
            path, _, leaf = name.rpartition(".")
            owner = _container(containers, path)
            shape = (2, WIDTH) if name == "lm_head.weight" else (WIDTH,)
            owner.register_parameter(leaf, nn.Parameter(torch.randn(shape) * 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.model.norm.weight) @ self.lm_head.weight.T  # type: ignore[operator,union-attr]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=1e-3)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1, 0.9)}


def _container(containers: dict[str, nn.Module], path: str) -> nn.Module:
    if path not in containers:
        parent_path, _, child = path.rpartition(".")
        module = nn.Module()
        _container(containers, parent_path).add_module(child, module)
        containers[path] = module
    return containers[path]


class MLP(LightningModule):
    """``depth`` square layers and a head; phase 0 of :func:`mlp_phases` is the last layer and the head."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)))
        self.head = nn.Linear(width, 2)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(x))

    training_step = Inventory.training_step
    validation_step = Inventory.validation_step
    configure_optimizers = Inventory.configure_optimizers


def mlp_phases(depth: int) -> list[list[str]]:
    return [[f"layers\\.{depth - 1}\\..*", "head\\..*"], [f"layers\\.{i}\\..*" for i in range(depth - 1)]]


def data(features: int, batches: int, batch_size: int) -> DataLoader:  # type: ignore[type-arg]
    x = torch.randn(batches * batch_size, features)
    return DataLoader(TensorDataset(x, torch.ones(len(x), 2)), batch_size=batch_size)


def schedule_file(folder: Path, phases: list[list[str]], first_phase_epochs: int | None = None) -> str:
    schedule: dict[int, dict[str, Any]] = {i: {"params": list(params)} for i, params in enumerate(phases)}
    if first_phase_epochs is not None:
        schedule[0]["max_transition_epoch"] = first_phase_epochs
    path = folder / "schedule.yaml"
    path.write_text(yaml.safe_dump(schedule, sort_keys=False))
    return str(path)


def callbacks(scheduler: bool, ft_schedule: str | None, extra: list[Callback]) -> tuple[list[Callback], bool]:
    """The scheduler's three callbacks (or none) and whether Lightning's own checkpointing stays on."""
    if not scheduler:
        return extra, True
    from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

    return [
        FTSEarlyStopping(monitor="val_loss", patience=1),
        FTSCheckpoint(monitor="val_loss"),
        FinetuningScheduler(ft_schedule=ft_schedule),
        *extra,
    ], False


def trainer(folder: Path, epochs: int, cbs: list[Callback], checkpointing: bool) -> Trainer:
    return Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        default_root_dir=str(folder),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=checkpointing or None,
        num_sanity_val_steps=0,
        callbacks=cbs,
    )


def timed_fit(size: int, schedule: str, scheduler: bool) -> float:
    """One one-epoch fit of an :class:`Inventory` model; the time covers callbacks, Trainer and fit."""
    model = Inventory(size)
    loader = data(WIDTH, 1, 4)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ft_schedule = schedule_file(folder, regex_phases()) if schedule == "regex" else None
        gc.collect()
        start = time.perf_counter()
        cbs, checkpointing = callbacks(scheduler, ft_schedule, [])
        trainer(folder, 1, cbs, checkpointing).fit(model, loader, loader)
        return time.perf_counter() - start


def fit(task: dict[str, Any]) -> dict[str, Any]:
    """``runs`` fits without and with the scheduler, interleaved, so both see the same machine."""
    found: dict[str, list[float]] = {"plain": [], "scheduler": []}
    for _ in range(task["runs"]):
        for kind in found:
            found[kind].append(timed_fit(task["size"], task["schedule"], kind == "scheduler"))
    return {"params": len(moe_names(task["size"])), **found}


class EpochStartClock(Callback):
    """Two of these around the scheduler's callbacks time their ``on_train_epoch_start`` hooks, epoch by epoch."""

    def __init__(self, marks: dict[int, list[float]]) -> None:
        self.marks = marks

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.marks.setdefault(trainer.current_epoch, []).append(time.perf_counter())


def one_transition(size: int) -> tuple[float, float, int]:
    model = Inventory(size)
    loader = data(WIDTH, 1, 4)
    marks: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ft_schedule = schedule_file(folder, regex_phases(), first_phase_epochs=1)
        cbs, _ = callbacks(True, ft_schedule, [EpochStartClock(marks)])
        cbs.insert(0, EpochStartClock(marks))  # Lightning keeps this order (it moves only checkpoints, to the end)
        trainer(folder, 2, cbs, False).fit(model, loader, loader)
    thawed = sum(p.requires_grad for p in model.parameters())
    return marks[1][1] - marks[1][0], marks[0][1] - marks[0][0], thawed


def transition(task: dict[str, Any]) -> dict[str, Any]:
    """The epoch-start hooks of the epoch that enters phase 1 (and of epoch 0, no transition, for comparison)."""
    found = [one_transition(task["size"]) for _ in range(task["runs"])]
    return {
        "seconds": [entered for entered, _, _ in found],
        "steady_seconds": [steady for _, steady, _ in found],
        "thawed": found[0][2],
        "params": len(moe_names(task["size"])),
    }


class StepClock(Callback):
    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.end, self.steps = skip, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if batch_idx == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx >= self.skip:
            self.end, self.steps = time.perf_counter(), self.steps + 1


def steps_per_second(batches: int, scheduler: bool) -> float:
    """Steps/s of one epoch; with the scheduler, one phase holds every parameter so the arithmetic is the same."""
    model = MLP(64, 4)
    loader = data(64, batches, 16)
    clock = StepClock(skip=50)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ft_schedule = schedule_file(folder, [[".*"]])
        cbs, checkpointing = callbacks(scheduler, ft_schedule, [clock])
        trainer(folder, 1, cbs, checkpointing).fit(model, loader, data(64, 1, 16))
    return clock.steps / (clock.end - clock.start)


def steps(task: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, list[float]] = {"plain": [], "scheduler": []}
    for _ in range(task["runs"]):
        for kind in found:
            found[kind].append(steps_per_second(task["batches"], kind == "scheduler"))
    return found


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


class FrozenStateProbe(Callback):
    """When the epoch's training steps are done (validation starts, no checkpoint written yet): the peak RSS so far
    and how many frozen parameters hold a gradient or optimizer state. Checkpoint writing is left out: Lightning
    serialises a checkpoint into memory before writing it, which would measure the checkpoint, not the training."""

    def __init__(self) -> None:
        self.found: dict[str, int] = {}

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.found:
            return
        peak = _status_kib("VmHWM")
        frozen = [p for p in pl_module.parameters() if not p.requires_grad]
        state = trainer.optimizers[0].state
        self.found = {
            "frozen_tensors": len(frozen),
            "frozen_with_grad": sum(p.grad is not None for p in frozen),
            "frozen_with_optimizer_state": sum(bool(state.get(p)) for p in frozen),
            "trainable_bytes": sum(p.numel() * p.element_size() for p in pl_module.parameters() if p.requires_grad),
            "training_peak_kib": peak,
        }


def memory(task: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of a one-epoch fit over the RSS just before it (weights already resident).

    ``mode``: ``full`` (plain, everything trains), ``frozen`` (plain, only phase 0's parameters train: the ideal),
    ``scheduler`` (phase 0 of :func:`mlp_phases` under the scheduler).
    """
    torch.manual_seed(0)
    depth = 16
    model = MLP(2048, depth)
    if task["mode"] == "frozen":
        keep = {f"layers.{depth - 1}.0.weight", f"layers.{depth - 1}.0.bias", "head.weight", "head.bias"}
        for name, param in model.named_parameters():
            param.requires_grad = name in keep
    loader = data(2048, 4, 8)
    probe = FrozenStateProbe()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ft_schedule = schedule_file(folder, mlp_phases(depth))
        cbs, checkpointing = callbacks(task["mode"] == "scheduler", ft_schedule, [probe])
        fit_trainer = trainer(folder, 1, cbs, checkpointing)
        gc.collect()
        before = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
        fit_trainer.fit(model, loader, loader)
        with_checkpoint = _status_kib("VmHWM")
    extra = (probe.found.pop("training_peak_kib") - before) * 1024
    return {
        "weights_bytes": weights,
        "rss_before_kib": before,
        "peak_extra_bytes": extra,
        "peak_extra_with_checkpoint_bytes": (with_checkpoint - before) * 1024,
        **probe.found,
    }


TASKS = {"fit": fit, "transition": transition, "steps": steps, "memory": memory}


def warm_up() -> None:
    """A small fit with and without the scheduler, so lazy imports and first-call costs are not billed to a task."""
    for scheduler in (False, True):
        timed_fit(200, "implicit", scheduler)


def main() -> None:
    task = json.loads(sys.argv[1])
    seed_everything(0, verbose=False)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "finetuning_scheduler"):
        __import__("logging").getLogger(name).setLevel("ERROR")
    if task.get("warm_up", True):
        warm_up()
    result = TASKS[task["task"]](task)
    import finetuning_scheduler

    package = Path(finetuning_scheduler.__file__).resolve().parent
    result["package"] = f"{getattr(finetuning_scheduler, '__version__', '?')} ({package})"
    sys.stdout.flush()
    print("\n" + json.dumps(result), flush=True)
    os._exit(0)  # skip interpreter teardown of 100k-tensor models: not part of any figure


if __name__ == "__main__":
    main()
