"""The Hugging Face Trainer integration: a TrainerCallback thaws phases at epoch starts and grows the optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # transformers.Trainer needs it

import torch
from driver_support import load_example
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from finetuning_scheduler.shell.engine.torch_helpers import optimizer_problems
from finetuning_scheduler.shell.integrations.driver import unwrap_optimizer
from finetuning_scheduler.shell.integrations.hf import FinetuningCallback, decay_parameter_names

pytestmark = pytest.mark.slow  # Hugging Face Trainer runs

hf_example = load_example("hf_trainer")
PHASE0 = {
    n for n, _ in hf_example.tiny_gpt2().named_parameters() if n.startswith(("transformer.h.1.", "transformer.ln_f."))
}


class EmbeddingWatcher(TrainerCallback):
    """Copies the token embeddings at every epoch start (it runs after the scheduler's callback)."""

    def __init__(self) -> None:
        self.snapshots: list[torch.Tensor] = []

    def on_epoch_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.snapshots.append(model.transformer.wte.weight.detach().clone())


def _args(tmp_path: Path, **overrides: Any) -> TrainingArguments:
    settings: dict[str, Any] = {
        "output_dir": str(tmp_path),
        "num_train_epochs": 4,
        "per_device_train_batch_size": 8,
        "learning_rate": 5e-3,
        "weight_decay": 0.01,
        "use_cpu": True,
        "report_to": [],
        "save_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
        **overrides,
    }
    return TrainingArguments(**settings)


def _data(rows: int = 32) -> list[dict[str, torch.Tensor]]:
    tokens = torch.randint(0, 100, (rows, 16), generator=torch.Generator().manual_seed(0))
    return [{"input_ids": row, "labels": row} for row in tokens]


@pytest.fixture(scope="module")
def run() -> tuple[FinetuningCallback, Trainer, EmbeddingWatcher, list[str]]:
    """The example, watched."""
    watcher, lines = EmbeddingWatcher(), []
    callback, trainer = hf_example.train(epochs=4, log=lines.append, callbacks=[watcher])
    return callback, trainer, watcher, lines


def test_phases_begin_at_epoch_starts(run: Any) -> None:
    callback, trainer, *_ = run
    assert [(t.epoch, t.depth) for t in callback.traces] == [(0, 0), (1, 1), (2, 2), (3, 2)]
    assert [t.reason is not None for t in callback.traces] == [False, True, True, False]
    assert trainer.state.global_step == 16


def test_the_trainers_optimizer_starts_with_phase_zero_only(run: Any) -> None:
    callback, *_ = run
    first = callback.traces[0]
    assert set(first.trainable) == PHASE0
    assert len(first.groups) == 2  # the Trainer's decay and no-decay groups, built from trainable parameters only
    assert {n for group in first.groups for n in group} == PHASE0


def test_new_phases_get_groups_split_like_the_trainers(run: Any) -> None:
    _, trainer, *_ = run
    optimizer = unwrap_optimizer(trainer.optimizer)
    groups = optimizer.param_groups
    assert [g.get("name") for g in groups] == [None, None, "phase1", "phase1/no_decay", "phase2"]
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0, 0.01, 0.0, 0.01]
    decay = decay_parameter_names(trainer.model)
    by_id = {id(p): n for n, p in trainer.model.named_parameters()}
    phase1 = [by_id[id(p)] for p in groups[2]["params"]]
    assert phase1 and all(n.startswith("transformer.h.0.") and n in decay for n in phase1)
    assert all(by_id[id(p)] not in decay for p in groups[3]["params"])
    assert optimizer_problems(optimizer, trainer.model) == []


def test_the_lr_scheduler_knows_every_group_and_scales_new_ones(run: Any) -> None:
    callback, trainer, *_ = run
    scheduler = trainer.lr_scheduler
    assert len(scheduler.base_lrs) == len(scheduler.lr_lambdas) == 5
    # Phase 1 begins after 4 of 16 steps of the Trainer's linear decay: its lr starts at 1e-3 * (1 - 4/16).
    assert callback.traces[1].lrs[2] == pytest.approx(1e-3 * 0.75)


def test_frozen_embeddings_do_not_train_until_their_phase(run: Any) -> None:
    _, _, watcher, _ = run
    first, second, third, fourth = watcher.snapshots
    assert torch.equal(first, second) and torch.equal(second, third)  # frozen in phases 0 and 1
    assert not torch.equal(third, fourth)  # thawed at epoch 2 and trained


def test_the_example_prints_its_phases(run: Any) -> None:
    *_, lines = run
    assert [line.split(",")[0] for line in lines] == [
        "epoch 0: phase 0",
        "epoch 1: phase 1",
        "epoch 2: phase 2",
        "epoch 3: phase 2",
    ]
    assert lines[1].startswith("epoch 1: phase 1, 26 trainable")


def test_the_decay_split_is_the_trainers_own(tmp_path: Path) -> None:
    model = hf_example.tiny_gpt2()
    trainer = Trainer(model=model, args=_args(tmp_path), train_dataset=_data())
    decay_group, no_decay_group = trainer.create_optimizer().param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decay = decay_parameter_names(model)
    assert "lm_head.weight" in decay  # the tied alias of transformer.wte.weight: harmless, never a registered name
    assert {names[id(p)] for p in decay_group["params"]} == decay & set(names.values())
    assert not {names[id(p)] for p in no_decay_group["params"]} & decay


def test_a_plateau_ends_phases_and_stops_the_final_one(tmp_path: Path) -> None:
    # Nothing learns (lr 0, then tiny lrs), so eval_loss never improves by min_delta: each phase converges after
    # two evaluations, and the converged final phase stops the run long before num_train_epochs.
    schedule = {
        0: {"params": ["transformer.h.1.*", "transformer.ln_f.*"]},
        1: {"params": ["transformer.h.0.*"], "lr": 1e-12},
        2: {"params": ["transformer.w[tp]e.*"], "lr": 1e-12},
    }
    model = hf_example.tiny_gpt2()
    callback = FinetuningCallback(model, schedule, monitor="eval_loss", patience=1, min_delta=1e-3)
    args = _args(tmp_path, num_train_epochs=10, learning_rate=0.0, eval_strategy="epoch")
    trainer = Trainer(model=model, args=args, train_dataset=_data(), eval_dataset=_data(8), callbacks=[callback])
    trainer.train()
    assert [t.depth for t in callback.traces] == [0, 0, 1, 1, 2, 2]
    assert trainer.state.epoch == pytest.approx(6)


def test_a_missing_monitor_is_named(tmp_path: Path) -> None:
    model = hf_example.tiny_gpt2()
    callback = FinetuningCallback(model, hf_example.SCHEDULE, monitor="accuracy")
    with pytest.raises(KeyError, match="accuracy"):
        callback.on_evaluate(_args(tmp_path), TrainerState(), TrainerControl(), metrics={"eval_loss": 1.0})


def test_an_optimizer_holding_frozen_parameters_is_rejected(tmp_path: Path) -> None:
    model = hf_example.tiny_gpt2()
    callback = FinetuningCallback(model, hf_example.SCHEDULE)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(
        model=model, args=_args(tmp_path), train_dataset=_data(), callbacks=[callback], optimizers=(optimizer, None)
    )
    with pytest.raises(ValueError, match=r"frozen parameter transformer\.wte\.weight is in an optimizer group"):
        trainer.train()


def test_a_resumed_run_is_refused(tmp_path: Path) -> None:
    callback = FinetuningCallback(hf_example.tiny_gpt2(), hf_example.SCHEDULE)
    with pytest.raises(NotImplementedError, match="resume_from_checkpoint"):
        callback.on_train_begin(_args(tmp_path), TrainerState(global_step=4), TrainerControl(), optimizer=None)


def test_a_schedule_that_reinitialises_the_optimizer_is_refused_for_the_trainer() -> None:
    from finetuning_scheduler import ScheduleError

    model = hf_example.tiny_gpt2()
    names = [name for name, _ in model.named_parameters()]
    schedule = {
        0: {"params": names[-1:]},
        1: {"params": names[:-1], "new_optimizer": {"optimizer_init": {"class_path": "torch.optim.Adam"}}},
    }
    with pytest.raises(ScheduleError, match=r"unsupported-reinit"):
        FinetuningCallback(model, schedule)


def test_a_phase_without_an_epoch_and_no_monitor_says_what_to_give_the_callback() -> None:
    from finetuning_scheduler import ScheduleError

    schedule = {0: {"params": ["transformer.h.1.*"]}, 1: {"params": ["transformer.h.0.*"]}}
    with pytest.raises(ScheduleError) as raised:
        FinetuningCallback(hf_example.tiny_gpt2(), schedule)
    message = str(raised.value)
    assert "error[missing-max-transition-epoch] phase 0" in message
    assert "FinetuningCallback(monitor='eval_loss')" in message and "epoch_transitions_only" not in message
