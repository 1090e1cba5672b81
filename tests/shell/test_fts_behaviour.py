"""FTS behaviours, ported as our own tests on real CPU fits (fts_behavior.md section 8, groups A-E, H, I)."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from fts_support import BoringFTSModel, Recorder, fit_kwargs
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from finetuning_scheduler import (
    FinetuningScheduler,
    FTSCheckpoint,
    FTSEarlyStopping,
    ScheduleValidationError,
)

EXPLICIT = {
    0: {"params": ["model.3.bias", "model.3.weight", "model.2.bias", "model.2.weight"], "max_transition_epoch": 3},
    1: {"params": ["model.1.bias", "model.1.weight"], "lr": 1e-06},
    2: {"params": ["model.0.*"]},
}
EPOCHS_ONLY = copy.deepcopy(EXPLICIT)
EPOCHS_ONLY[1]["max_transition_epoch"] = 2
EPOCHS_ONLY[2]["max_transition_epoch"] = 2


def _fit(
    tmp_path: Path,
    model: pl.LightningModule | None = None,
    *,
    callbacks: list[pl.Callback] | None = None,
    **trainer_kwargs: Any,
) -> tuple[pl.Trainer, Recorder, pl.LightningModule]:
    pl.seed_everything(42)
    recorder = Recorder()
    model = model or BoringFTSModel(batch_size=1, length=64)
    trainer = pl.Trainer(
        **fit_kwargs(
            tmp_path, **{"max_epochs": 1000, "limit_train_batches": None, "limit_val_batches": None, **trainer_kwargs}
        ),
        callbacks=[*(callbacks or [FinetuningScheduler()]), recorder],
    )
    trainer.fit(model)
    return trainer, recorder, model


def _fts(trainer: pl.Trainer) -> FinetuningScheduler:
    return next(cb for cb in trainer.callbacks if isinstance(cb, FinetuningScheduler))


def _es(trainer: pl.Trainer) -> FTSEarlyStopping:
    return next(cb for cb in trainer.callbacks if isinstance(cb, FTSEarlyStopping))


# -- A. schedule generation and log dir ------------------------------------------------------------------------


class ParityRNN(BoringFTSModel):
    """Only the parameter layout matters here: generation never trains."""

    def __init__(self) -> None:
        super().__init__()
        del self.model
        self.rnn = nn.RNN(4, 8, batch_first=True)
        self.linear_out = nn.Linear(8, 2)


@pytest.mark.parametrize(
    ("model_cls", "phases", "phase1", "last"),
    [
        (BoringFTSModel, 4, ["model.2.bias", "model.2.weight"], ["model.0.bias", "model.0.weight"]),
        (ParityRNN, 3, ["rnn.bias_hh_l0", "rnn.bias_ih_l0"], ["rnn.weight_hh_l0", "rnn.weight_ih_l0"]),
    ],
)
def test_gen_ft_sched_only_writes_the_fts_default_schedule_and_exits(
    tmp_path: Path, model_cls: type, phases: int, phase1: list[str], last: list[str]
) -> None:
    trainer = pl.Trainer(**fit_kwargs(tmp_path), callbacks=[FinetuningScheduler(gen_ft_sched_only=True)])
    with pytest.raises(SystemExit):
        trainer.fit(model_cls())
    written = yaml.safe_load((tmp_path / f"{model_cls.__name__}_ft_schedule.yaml").read_text())
    assert len(written) == phases
    assert written[1]["params"] == phase1 and written[phases - 1]["params"] == last


def test_log_dir_receives_the_schedule_files(tmp_path: Path) -> None:
    target = tmp_path / "fts_logs"
    _fit(tmp_path, callbacks=[FinetuningScheduler(ft_schedule=EXPLICIT, max_depth=0, log_dir=target)], max_epochs=2)
    saved = yaml.safe_load((target / "BoringFTSModel_ft_schedule.yaml").read_text())
    assert saved[1] == {"params": ["model.1.bias", "model.1.weight"], "lr": 1e-06}


# -- B/C. explicit and implicit schedules, transitions ---------------------------------------------------------


def test_implicit_schedule_transitions_at_epochs_5_6_7_and_keeps_the_lr_schedule(tmp_path: Path) -> None:
    trainer, rec, _ = _fit(
        tmp_path, callbacks=[FinetuningScheduler(), FTSEarlyStopping(monitor="val_loss", patience=1)]
    )
    assert [rec.epochs[e]["depth"] for e in range(8)] == [0, 0, 0, 0, 0, 1, 2, 3]
    assert _es(trainer).stopped_epoch == 7
    assert rec.epochs[5]["lrs"] == (0.00016807, 1e-05)  # StepLR continues; the new group starts at base_max_lr
    assert rec.epochs[7]["lrs"] == (8.23543e-05, 4.9e-06, 7e-06, 1e-05)
    assert len(rec.epochs[7]["trainable"]) == 8 and _fts(trainer).restored_best_count == 3


@pytest.mark.parametrize(
    ("max_depth", "final_depth", "trainable", "groups"), [(-1, 2, 8, 3), (0, 0, 4, 1), (1, 1, 6, 2), (999, 2, 8, 3)]
)
def test_explicit_schedule_respects_max_depth(
    tmp_path: Path, max_depth: int, final_depth: int, trainable: int, groups: int
) -> None:
    fts = FinetuningScheduler(ft_schedule=EXPLICIT, max_depth=max_depth)
    _, rec, model = _fit(tmp_path, callbacks=[fts, FTSEarlyStopping(monitor="val_loss", patience=1)])
    last = rec.epochs[max(rec.epochs)]
    assert (fts.curr_depth, fts.max_depth, fts.depth_remaining) == (final_depth, final_depth, 0)
    assert len(last["trainable"]) == trainable and len(last["groups"]) == groups
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for d, phase in EXPLICIT.items() if d > final_depth for n in _names(model, phase)}
    if final_depth >= 1:
        entered = min(e for e, state in rec.epochs.items() if state["depth"] == 1)
        assert rec.epochs[entered]["lrs"][1] == 1e-06  # phase 1's lr from the schedule, before StepLR decays it


def _names(model: nn.Module, phase: dict[str, Any]) -> set[str]:
    import re

    return {n for n, _ in model.named_parameters() for p in phase["params"] if n == p or re.match(p, n)}


def test_no_decay_doubles_groups_and_zeroes_their_weight_decay(tmp_path: Path) -> None:
    model = BoringFTSModel(no_decay=["bias"])
    fts = FinetuningScheduler(ft_schedule=EXPLICIT)
    trainer, rec, _ = _fit(tmp_path, model, callbacks=[fts, FTSEarlyStopping(monitor="val_loss", patience=1)])
    last = rec.epochs[max(rec.epochs)]
    assert len(last["groups"]) == 5  # phase 0 from configure_optimizers (1 group), then 2 per later phase
    assert last["weight_decay"][1:] == (1e-06, 0.0, 1e-06, 0.0)
    assert all(all(n.endswith("bias") for n in group) for group in last["groups"][2::2])
    names = [g.get("name") for g in trainer.optimizers[0].param_groups]
    assert names[1:] == ["phase1", "phase1/no_decay", "phase2", "phase2/no_decay"]


def test_epoch_transitions_only_prunes_early_stopping_and_extends_max_epochs(tmp_path: Path) -> None:
    fts = FinetuningScheduler(ft_schedule=EPOCHS_ONLY, epoch_transitions_only=True)
    with pytest.warns(UserWarning) as caught:
        trainer, rec, _ = _fit(tmp_path, callbacks=[fts, EarlyStopping(monitor="val_loss")], max_epochs=6)
    texts = " ".join(str(w.message) for w in caught)
    assert "extraneous" in texts and "max_epochs becomes" in texts and "not after an earlier phase" in texts
    assert not any(isinstance(cb, EarlyStopping) for cb in trainer.callbacks)
    assert [rec.epochs[e]["depth"] for e in range(6)] == [0, 0, 0, 1, 2, 2]
    assert trainer.current_epoch == 6 and fts.depth_remaining == 0


def test_epoch_transitions_only_needs_an_epoch_on_every_phase(tmp_path: Path) -> None:
    with pytest.raises(ScheduleValidationError, match=r"missing-max-transition-epoch\] phase 1"):
        _fit(tmp_path, callbacks=[FinetuningScheduler(ft_schedule=EXPLICIT, epoch_transitions_only=True)])


def test_restore_best_off_never_restores(tmp_path: Path) -> None:
    fts = FinetuningScheduler(restore_best=False)
    _fit(tmp_path, callbacks=[fts, FTSEarlyStopping(monitor="val_loss", patience=1)])
    assert fts.curr_depth == 3 and fts.restored_best_count == 0
    assert not any(record.restored_best for record in fts.transition_history)


def test_restore_best_reloads_the_best_weights_at_each_transition(tmp_path: Path) -> None:
    best_weights: dict[int, dict[str, torch.Tensor]] = {}

    class Check(pl.Callback):
        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            fts = _fts(trainer)
            if fts.transition_history and fts.transition_history[-1].epoch == trainer.current_epoch:
                saved = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)["state_dict"]
                best_weights[trainer.current_epoch] = saved
                for name, value in pl_module.state_dict().items():
                    assert torch.equal(value, saved[name]), name

    fts = FinetuningScheduler()
    _fit(tmp_path, callbacks=[fts, FTSEarlyStopping(monitor="val_loss", patience=1), Check()])
    assert sorted(best_weights) == [5, 6, 7]


# -- D. phase-0 enforcement ------------------------------------------------------------------------------------


def test_enforce_phase0_rebuilds_an_optimizer_holding_every_parameter(tmp_path: Path) -> None:
    model = BoringFTSModel(all_params_in_optimizer=True, no_decay=["bias"])
    fts = FinetuningScheduler(ft_schedule=EXPLICIT, max_depth=2)
    _, rec, _ = _fit(tmp_path, model, callbacks=[fts, FTSEarlyStopping(monitor="val_loss", patience=1)])
    assert rec.epochs[0]["groups"] == (("model.2.weight", "model.3.weight"), ("model.2.bias", "model.3.bias"))
    assert rec.epochs[0]["lrs"] == (0.001, 0.001) and rec.epochs[1]["lrs"] == (0.0007, 0.0007)
    assert len(rec.epochs[max(rec.epochs)]["groups"]) == 6


def test_phase0_mismatch_only_warns_without_enforcement(tmp_path: Path) -> None:
    model = BoringFTSModel(all_params_in_optimizer=True)
    with pytest.warns(UserWarning, match="do not require a gradient"):
        _fit(
            tmp_path,
            model,
            callbacks=[FinetuningScheduler(ft_schedule=EXPLICIT, max_depth=0, enforce_phase0_params=False)],
            max_epochs=1,
        )


# -- H. misconfiguration and warnings --------------------------------------------------------------------------


def test_missing_callbacks_are_added_with_warnings(tmp_path: Path) -> None:
    with pytest.warns(UserWarning) as caught:
        trainer, _, _ = _fit(tmp_path, callbacks=[FinetuningScheduler(max_depth=0)], max_epochs=1)
    texts = " ".join(str(w.message) for w in caught)
    assert "needs a FTSEarlyStopping" in texts and "replacing the ModelCheckpoint with FTSCheckpoint" in texts
    assert sum(isinstance(cb, FTSCheckpoint) for cb in trainer.callbacks) == 1
    assert sum(isinstance(cb, FTSEarlyStopping) for cb in trainer.callbacks) == 1


def test_plain_callbacks_are_replaced_keeping_their_settings(tmp_path: Path) -> None:
    callbacks = [
        FinetuningScheduler(max_depth=0),
        EarlyStopping(monitor="abc_val_loss", patience=7, min_delta=0.5),
        ModelCheckpoint(monitor="abc_val_loss", save_top_k=2, dirpath=tmp_path / "ck"),
    ]

    class Model(BoringFTSModel):
        def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
            self.log("abc_val_loss", nn.functional.mse_loss(self(batch), torch.ones(batch.shape[0], 2)))

    with pytest.warns(UserWarning, match="replacing the EarlyStopping with FTSEarlyStopping"):
        trainer, _, _ = _fit(tmp_path, Model(), callbacks=callbacks, max_epochs=1)
    es, ckpt = _es(trainer), trainer.checkpoint_callback
    assert isinstance(ckpt, FTSCheckpoint)
    assert (es.monitor, es.patience, es.min_delta) == ("abc_val_loss", 7, -0.5)
    assert (ckpt.monitor, ckpt.save_top_k, Path(ckpt.dirpath)) == ("abc_val_loss", 2, tmp_path / "ck")


def test_lr_monitor_sits_between_the_scheduler_and_the_checkpoint(tmp_path: Path) -> None:
    monitor = LearningRateMonitor()
    trainer, _, _ = _fit(
        tmp_path, callbacks=[monitor, FinetuningScheduler(max_depth=0)], max_epochs=1, logger=CSVLogger(tmp_path)
    )
    order = [type(cb).__name__ for cb in trainer.callbacks]
    assert order.index("FinetuningScheduler") < order.index("LearningRateMonitor") < order.index("FTSCheckpoint")


@pytest.mark.parametrize(
    ("callbacks", "message"),
    [
        ([FTSCheckpoint(monitor="val_loss")], "only works together with a FinetuningScheduler"),
        ([FTSEarlyStopping(monitor="val_loss")], "standard EarlyStopping"),
        ([FinetuningScheduler(), FTSCheckpoint(monitor="val_loss", save_top_k=0)], "save_top_k to a non-zero"),
        ([FinetuningScheduler(), FTSCheckpoint(monitor=None)], "no quantity to monitor"),
        ([FinetuningScheduler(ft_schedule="/nonexistent/sched.yaml")], "Could not find specified fine-tuning"),
        (
            [FinetuningScheduler(reinit_lr_cfg={"lr_scheduler_init": {"class_path": "x"}})],
            r"error\[reinit-class\] reinit_lr_cfg.lr_scheduler_init.class_path: cannot import 'x'",
        ),
        (
            [FinetuningScheduler(reinit_optim_cfg={"optimizer_init": {"class_path": "torch.optim.Nope"}})],
            "module 'torch.optim' has no class 'Nope'",
        ),
        (
            [FinetuningScheduler(reinit_optim_cfg={"optimizer_init": "torch.optim.SGD"})],
            r"error\[invalid-value\] reinit_optim_cfg.optimizer_init: expected a mapping",
        ),
        (
            [FinetuningScheduler(ft_schedule=EXPLICIT, reinit_lr_cfg={"lr_scheduler_init": {"class_path": "x.Y"}})],
            r"reinit_lr_cfg: reinit_lr_cfg is for implicit mode, not with an explicit ft_schedule",
        ),
        (
            [
                FinetuningScheduler(
                    ft_schedule={
                        **EXPLICIT,
                        1: {**EXPLICIT[1], "new_optimizer": {"optimizer_init": {"class_path": "torch.optim.Adamm"}}},
                    }
                )
            ],
            r"error\[reinit-class\] phase 1 › new_optimizer.optimizer_init.class_path",
        ),
    ],
)
def test_misconfigurations_fail_at_setup(tmp_path: Path, callbacks: list[pl.Callback], message: str) -> None:
    with pytest.raises(MisconfigurationException, match=message):
        _fit(tmp_path, callbacks=callbacks, max_epochs=1)


def test_duplicate_scheduler_callbacks_are_rejected(tmp_path: Path) -> None:
    # Lightning itself refuses two stateful callbacks of one type when the Trainer is built.
    with pytest.raises(RuntimeError, match="more than one stateful callback of type `FinetuningScheduler`"):
        _fit(tmp_path, callbacks=[FinetuningScheduler(), FinetuningScheduler()], max_epochs=1)
    with pytest.raises(MisconfigurationException, match="maximum of one"):
        _fit(
            tmp_path,
            callbacks=[
                FinetuningScheduler(),
                EarlyStopping(monitor="val_loss", patience=2),
                EarlyStopping(monitor="train_loss", patience=3),
            ],
            max_epochs=1,
        )


def test_every_schedule_error_is_reported_at_once_before_any_step(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "0:\n  params: [model.3.weight, model.3.bias]\n  lr: 1.0e-3\n"
        "1:\n  params: [model.9.*]\n  lr: -1\n"
        "2:\n  params: [model.3.bias, model.1.*]\n  max_transition_epoch: 'soon'\n"
        "3:\n  prams: [model.0.*]\n"
    )
    model = BoringFTSModel()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ScheduleValidationError) as raised:
        _fit(tmp_path, model, callbacks=[FinetuningScheduler(ft_schedule=str(path))], max_epochs=1)
    codes = [(d.code, d.location.phase, d.position.line if d.position else None) for d in raised.value.diagnostics]
    assert ("no-match", 1, 5) in codes and ("invalid-lr", 1, 6) in codes
    assert ("param-in-several-phases", 2, 8) in codes and ("invalid-value", 2, 9) in codes
    assert ("unknown-key", 3, 11) in codes and ("lr-in-phase-0", 0, 3) in codes
    assert f"{path}:6:3: error[invalid-lr]" in str(raised.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_callers_schedule_dict_is_never_mutated(tmp_path: Path) -> None:
    schedule = {"0": {"params": ["model.3.*"]}, "1": {"params": ["model.[0-2].*"], "lr": "1e-4"}}
    original = copy.deepcopy(schedule)
    fts = FinetuningScheduler(ft_schedule=schedule)
    _fit(tmp_path, callbacks=[fts, FTSEarlyStopping(monitor="val_loss", patience=1)])
    assert schedule == original and fts.curr_depth == 1


def test_several_optimizers_and_unsupported_schedulers_are_rejected(tmp_path: Path) -> None:
    class TwoOptimizers(BoringFTSModel):
        def configure_optimizers(self) -> Any:
            return [torch.optim.SGD(self.parameters(), lr=0.1), torch.optim.SGD(self.parameters(), lr=0.1)]

    class HalvingLR(torch.optim.lr_scheduler.LRScheduler):  # a custom scheduler: its per-group state is unknown
        def get_lr(self) -> list[float]:
            return [group["lr"] * 0.5 for group in self.optimizer.param_groups]

    class Custom(BoringFTSModel):
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)
            return [opt], [HalvingLR(opt)]

    class Cyclic(BoringFTSModel):  # every torch scheduler follows new groups now, CyclicLR included
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)
            return [opt], [torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1)]

    class Manual(TwoOptimizers):
        automatic_optimization = False

    with pytest.raises(MisconfigurationException, match="single-optimizer"):
        _fit(tmp_path, Manual(), max_epochs=1)
    with pytest.raises(MisconfigurationException, match="HalvingLR is not supported"):
        _fit(tmp_path, Custom(), max_epochs=1)
    with pytest.warns(UserWarning, match="allowing it because allow_untested"):
        _fit(tmp_path, Custom(), callbacks=[FinetuningScheduler(max_depth=0, allow_untested=True)], max_epochs=1)
    two_phases = {0: {"params": ["model.3.*"], "max_transition_epoch": 2}, 1: {"params": ["model.[012].*"]}}
    trainer, _, _ = _fit(tmp_path, Cyclic(), callbacks=[FinetuningScheduler(ft_schedule=two_phases)], max_epochs=4)
    assert _fts(trainer).curr_depth == 1 and len(trainer.lr_scheduler_configs[0].scheduler.max_lrs) == 2


# -- what users see --------------------------------------------------------------------------------------------


def test_depth_and_trainable_count_are_logged_each_epoch(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path, name="csv")
    fts = FinetuningScheduler(ft_schedule=EPOCHS_ONLY, epoch_transitions_only=True)
    _fit(tmp_path, callbacks=[fts], max_epochs=6, logger=logger)
    with open(Path(logger.log_dir) / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    depths = [float(r["finetuning/depth"]) for r in rows if r.get("finetuning/depth")]
    counts = [float(r["finetuning/trainable_params"]) for r in rows if r.get("finetuning/trainable_params")]
    assert depths == [0, 0, 0, 1, 2, 2]
    assert counts[0] == (32 * 2 + 2) + (32 * 32 + 32)  # phase 0: model.3 and model.2
    assert counts == sorted(counts) and counts[-1] == sum(p.numel() for p in BoringFTSModel().parameters())
    shares = [float(r["finetuning/trainable_share"]) for r in rows if r.get("finetuning/trainable_share")]
    assert shares[0] == counts[0] / counts[-1] and shares[-1] == 1.0


# -- I. batch norm and early stopping --------------------------------------------------------------------------


class BNModel(BoringFTSModel):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(32, 32), nn.BatchNorm1d(32), nn.Linear(32, 2))

    def train_dataloader(self) -> Any:
        return torch.utils.data.DataLoader(
            torch.randn(64, 32, generator=torch.Generator().manual_seed(3)), batch_size=32
        )

    def val_dataloader(self) -> Any:
        return self.train_dataloader()


BN_SCHEDULE = {
    0: {"params": ["model.2.*"], "max_transition_epoch": 1},
    1: {"params": ["model.1.*"], "max_transition_epoch": 2},
    2: {"params": ["model.0.*"], "max_transition_epoch": 2},
}


@pytest.mark.parametrize("track", [True, False])
def test_frozen_batch_norm_tracks_running_stats_as_configured(tmp_path: Path, track: bool) -> None:
    seen: dict[int, tuple[bool, bool, int]] = {}

    class Watch(pl.Callback):
        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            bn = pl_module.model[1]
            seen[trainer.current_epoch] = (bn.track_running_stats, bn.weight.requires_grad, int(bn.num_batches_tracked))

    fts = FinetuningScheduler(ft_schedule=BN_SCHEDULE, epoch_transitions_only=True, frozen_bn_track_running_stats=track)
    _fit(tmp_path, BNModel(), callbacks=[fts, Watch()], max_epochs=3)
    assert seen[0][:2] == (track, False) and seen[0][2] == (2 if track else 0)
    assert seen[1][:2] == (True, True)


def test_non_finite_metric_stops_the_whole_run_mid_schedule(tmp_path: Path) -> None:
    class NaNLoss(BoringFTSModel):
        def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
            self.log("val_loss", torch.tensor(float("nan") if self.current_epoch >= 2 else 1.0 - self.current_epoch))

    fts = FinetuningScheduler(ft_schedule=EXPLICIT)
    trainer, _, _ = _fit(tmp_path, NaNLoss(), callbacks=[fts, FTSEarlyStopping(monitor="val_loss")])
    assert _es(trainer).stopped_epoch == 2 and fts.curr_depth == 0
