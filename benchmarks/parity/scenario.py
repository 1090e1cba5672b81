"""Run parity scenarios with whichever ``finetuning_scheduler`` this interpreter imports; write one JSON trace each.

This file is executed twice by ``benchmarks/parity/run.py``: once with the reference Fine-Tuning Scheduler (FTS)
installed in a private venv and once with this project's package. It must therefore depend on nothing but torch,
Lightning, PyYAML and the public FTS API (``FinetuningScheduler``, ``FTSEarlyStopping``, ``FTSCheckpoint``).

Usage::

    python benchmarks/parity/scenario.py --out DIR [--scenarios a,b] [--list]

Each scenario writes ``DIR/<name>.json``: a per-epoch trace recorded at ``on_train_epoch_start`` (after the
scheduler's own hook) and a final record at ``on_train_end``. A scenario that raises is recorded with
``status: "error"`` and the traceback; when ``finetuning_scheduler`` cannot be imported at all every scenario is
recorded with ``status: "import_error"``.

The model is the FTS test fixture (fts_behavior.md §8): ``Sequential(Linear(32, 32) x 3, Linear(32, 2))`` trained
towards ones, SGD(lr=1e-3, weight_decay=1e-6) over the parameters that require grad, StepLR(step_size=1,
gamma=0.7), and a validation loss against ones before ``diverge_on_epoch`` and against zeros from then on, so that
early stopping fires deterministically.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------------------------
# Scenario table (plain data, importable without torch so that run.py can list it)
# ---------------------------------------------------------------------------------------------------------------

# The explicit schedule of the FTS fixture (`boring_ft_schedule[1]`), written by hand so that it does not depend on
# either implementation's generator. Phase 1's lr is a YAML float here; `explicit_file_lr_string` uses `1e-06`,
# which PyYAML reads as a string.
EXPLICIT_SCHEDULE_YAML = """\
0:
  params:
  - model.3.bias
  - model.3.weight
  - model.2.bias
  - model.2.weight
  max_transition_epoch: 3
1:
  params:
  - model.1.bias
  - model.1.weight
  lr: 1.0e-06
2:
  params:
  - model.0.*
"""

# `boring_ft_schedule[2]`: every phase has a max_transition_epoch, so it suits epoch_transitions_only.
EPOCH_ONLY_SCHEDULE_YAML = """\
0:
  params:
  - model.3.bias
  - model.3.weight
  - model.2.bias
  - model.2.weight
  max_transition_epoch: 3
1:
  params:
  - model.1.bias
  - model.1.weight
  lr: 1.0e-06
  max_transition_epoch: 2
2:
  params:
  - model.0.*
  max_transition_epoch: 2
"""


# The generated (implicit) schedule of the fixture, written out, with reinitialisation blocks added per phase: FTS's
# §8 F-G configurations (optimizer and LR-scheduler reinitialisation, fixture with diverge_on_epoch=1, patience 2).
_FOUR_PHASES = [["model.3.bias", "model.3.weight"], ["model.2.bias", "model.2.weight"],
                ["model.1.bias", "model.1.weight"], ["model.0.bias", "model.0.weight"]]  # fmt: skip


def _optimizer(class_path: str, **init_args: Any) -> dict[str, Any]:
    return {"optimizer_init": {"class_path": f"torch.optim.{class_path}", "init_args": init_args}}


def _lr_scheduler(class_path: str, **block: Any) -> dict[str, Any]:
    init_args = block.pop("init_args", {})
    return {
        "lr_scheduler_init": {"class_path": f"torch.optim.lr_scheduler.{class_path}", "init_args": init_args},
        **block,
    }


def _four_phases(extra: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {depth: {"params": list(params), **extra.get(depth, {})} for depth, params in enumerate(_FOUR_PHASES)}


REINIT_SCHEDULES: dict[str, dict[int, dict[str, Any]]] = {
    "reinit_optim": _four_phases(
        {1: {"new_optimizer": _optimizer("Adam", lr=2.1e-4, weight_decay=1e-6)},
         2: {"new_optimizer": _optimizer("SGD", lr=2e-3, momentum=0.9, weight_decay=2e-5)}}
    ),
    "reinit_optimlr": _four_phases(
        {1: {"new_optimizer": _optimizer("Adam", lr=2.1e-4, weight_decay=1e-6),
             "new_lr_scheduler": _lr_scheduler("StepLR", init_args={"step_size": 1, "gamma": 0.5})},
         2: {"lr": 3e-6, "new_optimizer": _optimizer("SGD", lr=2e-3, momentum=0.9, weight_decay=2e-5),
             "new_lr_scheduler": _lr_scheduler("StepLR", init_args={"step_size": 1, "gamma": 0.2})}}
    ),
    "reinit_optim_then_kept": _four_phases(
        {1: {"new_optimizer": _optimizer("Adam", lr=2.1e-4, weight_decay=1e-6)}}  # phases 2-3 keep Adam
    ),
    "reinit_lr": _four_phases(
        {1: {"new_lr_scheduler": _lr_scheduler("StepLR", init_args={"step_size": 1, "gamma": 0.7})},
         2: {"lr": 3e-6, "new_lr_scheduler": _lr_scheduler(
             "CosineAnnealingWarmRestarts", init_args={"T_0": 3, "eta_min": 1e-7}, init_pg_lrs=[1e-6, 2e-6])}}
    ),
    "reinit_lr_rlrop": _four_phases(
        {1: {"new_lr_scheduler": _lr_scheduler("ReduceLROnPlateau", init_args={"patience": 0, "min_lr": 1e-7},
                                               pl_lrs_cfg={"monitor": "val_loss"}, init_pg_lrs=[1.5e-6])}}
    ),
}  # fmt: skip
IMPLICIT_ADAM = _optimizer("Adam", lr=2.2e-4, weight_decay=1e-6)
IMPLICIT_STEP = _lr_scheduler("StepLR", init_args={"step_size": 1, "gamma": 0.5})
REINIT_FIT: dict[str, Any] = {"model": {"diverge_on_epoch": 1}, "es": {"monitor": "val_loss", "patience": 2}}


def _explicit_dict() -> dict[int, dict[str, Any]]:
    return {
        0: {"params": ["model.3.bias", "model.3.weight", "model.2.bias", "model.2.weight"], "max_transition_epoch": 3},
        1: {"params": ["model.1.bias", "model.1.weight"], "lr": 1e-06},
        2: {"params": ["model.0.*"]},
    }


# E (`ckpt_set`): a first fit to depth 1 whose best and k-th best checkpoints are resumed with max_depth -1.
RESUME_ES: dict[str, Any] = {"monitor": "val_loss", "patience": 1, "min_delta": 0.001}
RESUME_CKPT: dict[str, Any] = {"monitor": "val_loss", "save_top_k": 3}
RESUME_FIRST_FIT: dict[str, Any] = {
    "schedule": None,
    "fts": {"max_depth": 1},
    "es": RESUME_ES,
    "ckpt": {"monitor": "val_loss", "save_top_k": 2},
}

# name -> configuration. Keys:
#   schedule: None (implicit) | "file" | "file_lr_string" | "dict" | "epoch_only_file"
#   fts: extra FinetuningScheduler kwargs; es: FTSEarlyStopping kwargs or None (no ES callback);
#   ckpt: FTSCheckpoint kwargs or None (no checkpoint callback); model: FixtureModel kwargs;
#   trainer: extra Trainer kwargs; resume: {"from": "best"|"kth"|"last", "first": spec of the first fit};
#   section8: which expectation of fts_behavior.md §8 applies (documentation only).
SCENARIOS: dict[str, dict[str, Any]] = {
    "implicit": {"schedule": None, "section8": "B (F,-1); C intrafit restore_best=True"},
    "implicit_no_restore_best": {"schedule": None, "fts": {"restore_best": False}, "section8": "C restore_best=False"},
    "explicit_file": {"schedule": "file", "section8": "B (T,-1)"},
    "explicit_file_lr_string": {"schedule": "file_lr_string", "section8": "B (T,-1)"},
    "explicit_dict": {"schedule": "dict", "section8": "B (T,-1)"},
    "explicit_no_restore_best": {"schedule": "file", "fts": {"restore_best": False}},
    "implicit_max_depth_0": {"schedule": None, "fts": {"max_depth": 0}, "section8": "B (F,0)"},
    "explicit_max_depth_0": {"schedule": "file", "fts": {"max_depth": 0}, "section8": "B (T,0)"},
    "implicit_max_depth_1": {"schedule": None, "fts": {"max_depth": 1}},
    "explicit_max_depth_1": {"schedule": "file", "fts": {"max_depth": 1}},
    "implicit_max_depth_2": {"schedule": None, "fts": {"max_depth": 2}, "section8": "B (F,2)"},
    "explicit_max_depth_2": {"schedule": "file", "fts": {"max_depth": 2}, "section8": "B (T,2)"},
    "epoch_transitions_only": {
        "schedule": "epoch_only_file",
        "fts": {"epoch_transitions_only": True},
        "es": None,
        "trainer": {"max_epochs": 6},
        "section8": "I test_fts_epoch_trans_only",
    },
    "epoch_transitions_only_extraneous_es": {
        "schedule": "epoch_only_file",
        "fts": {"epoch_transitions_only": True},
        "trainer": {"max_epochs": 6},
        "section8": "I test_fts_epoch_trans_only (with an extraneous ES)",
    },
    "composed_es_epoch": {"schedule": "epoch_only_file", "trainer": {"max_epochs": 10}},
    "no_decay_implicit": {"schedule": None, "model": {"no_decay": ["bias"]}, "section8": "B decay (F,nodecay)"},
    "no_decay_explicit": {"schedule": "file", "model": {"no_decay": ["bias"]}, "section8": "B decay (T,nodecay)"},
    "no_lr_scheduler": {"schedule": None, "model": {"lr": 0.1, "lr_scheduler": False}, "section8": "C nolrs"},
    "enforce_phase0_wrong_params": {
        "schedule": None,
        "fts": {"max_depth": 2},
        "model": {"no_decay": ["bias"], "optimizer_params": "model.0."},
        "section8": "D test_fts_enforce_p0 (step_lr)",
    },
    "enforce_phase0_rlrop": {
        "schedule": None,
        "fts": {"max_depth": 2},
        "model": {"no_decay": ["bias"], "optimizer_params": "", "lr_scheduler": "rlrop"},
        "section8": "D test_fts_enforce_p0 (rlrop, all params)",
    },
    "enforce_phase0_lambda": {
        "schedule": None,
        "fts": {"max_depth": 2},
        "model": {"no_decay": ["bias"], "optimizer_params": "", "lr_scheduler": "lambda"},
        "section8": "D test_fts_enforce_p0 (lr_lambdas, all params)",
    },
    "lambda_apply_lambdas_new_pgs": {
        "schedule": "file",
        "fts": {"apply_lambdas_new_pgs": True},
        "model": {"lr_scheduler": "lambda"},
    },
    "default_callbacks_substituted": {"schedule": None, "es": None, "ckpt": None, "trainer": {"max_epochs": 12}},
    "resume_from_best": {
        "schedule": None,
        "es": RESUME_ES,
        "ckpt": RESUME_CKPT,
        "resume": {"from": "best", "first": RESUME_FIRST_FIT},
        "section8": "E test_fts_callback_resume (diff dirpath, best, max_depth -1)",
    },
    "resume_from_kth": {
        "schedule": None,
        "es": RESUME_ES,
        "ckpt": RESUME_CKPT,
        "resume": {"from": "kth", "first": RESUME_FIRST_FIT},
        "section8": "E test_fts_callback_resume (diff dirpath, kth, max_depth -1)",
    },
    "reinit_optim_explicit": {"schedule": "reinit_optim", **REINIT_FIT, "section8": "F explicit_optim"},
    "reinit_optimlr_explicit": {"schedule": "reinit_optimlr", **REINIT_FIT, "section8": "F explicit_optimlr"},
    "reinit_optim_then_kept": {
        "schedule": "reinit_optim_then_kept",
        **REINIT_FIT,
        "section8": "restore_best of a phase-0 (SGD) checkpoint while phase 1's Adam is in use",
    },
    "reinit_optim_implicit": {
        "schedule": None,
        "fts": {"reinit_optim_cfg": IMPLICIT_ADAM},
        **REINIT_FIT,
        "section8": "F implicit_optim",
    },
    "reinit_optimlr_implicit": {
        "schedule": None,
        "fts": {"reinit_optim_cfg": IMPLICIT_ADAM, "reinit_lr_cfg": IMPLICIT_STEP},
        **REINIT_FIT,
        "section8": "F implicit_optimlr",
    },
    "reinit_optimlr_implicit_use_curr": {
        "schedule": None,
        "fts": {
            "reinit_optim_cfg": IMPLICIT_ADAM,
            "reinit_lr_cfg": {**IMPLICIT_STEP, "use_current_optimizer_pg_lrs": True},
        },
        **REINIT_FIT,
        "section8": "F implicit_optimlr_use_curr",
    },
    "reinit_optimlr_no_decay": {
        "schedule": None,
        "fts": {"reinit_optim_cfg": IMPLICIT_ADAM, "reinit_lr_cfg": IMPLICIT_STEP},
        "model": {"diverge_on_epoch": 1, "no_decay": ["bias"]},
        "es": REINIT_FIT["es"],
        "section8": "F test_fts_reinit_optimlr_nodecay",
    },
    "reinit_lr_explicit": {"schedule": "reinit_lr", **REINIT_FIT, "section8": "G test_fts_reinitlr explicit"},
    "reinit_lr_implicit": {
        "schedule": None,
        "fts": {"reinit_lr_cfg": _lr_scheduler("StepLR", init_args={"step_size": 1, "gamma": 0.7})},
        **REINIT_FIT,
        "section8": "G test_fts_reinitlr implicit",
    },
    "reinit_lr_rlrop_explicit": {"schedule": "reinit_lr_rlrop", **REINIT_FIT, "section8": "G test_fts_reinitlr_rlrop"},
    "reinit_lr_rlrop_implicit": {
        "schedule": None,
        "fts": {
            "reinit_lr_cfg": _lr_scheduler(
                "ReduceLROnPlateau", init_args={"patience": 1, "min_lr": 1e-7}, pl_lrs_cfg={"monitor": "val_loss"}
            )
        },
        "model": {"diverge_on_epoch": 1, "lr_scheduler": "rlrop"},
        "es": REINIT_FIT["es"],
        "section8": "G test_fts_reinitlr_rlrop implicit (an initial ReduceLROnPlateau, another at every phase)",
    },
    "resume_from_kth_stateful_ckpt_path": {
        "schedule": None,
        "es": RESUME_ES,
        "ckpt": RESUME_CKPT,
        "resume": {"from": "kth", "first": RESUME_FIRST_FIT, "stateful": True},
        "section8": "E test_fts_callback_resume (diff dirpath, kth, max_depth -1)",
    },
}

DEFAULT_ES: dict[str, Any] = {"monitor": "val_loss", "patience": 1}
DEFAULT_CKPT: dict[str, Any] = {"monitor": "val_loss"}
DEFAULT_TRAINER: dict[str, Any] = {
    "max_epochs": 30,  # a safety cap: the fixture's runs stop through early stopping after about 8 epochs
    "limit_train_batches": 64,  # the whole fixture dataset (64 samples, batch size 1), as in FTS's tests
    "limit_val_batches": 64,
}

# ---------------------------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    value = float(value)
    return None if math.isnan(value) else value


def _jsonable(obj: Any) -> Any:
    """Turn a schedule or config structure into JSON-safe data, keeping key types visible (``int`` vs ``str``)."""
    if isinstance(obj, dict):
        return {f"{type(k).__name__}:{k}": _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, bool | int | float | str) or obj is None:
        return obj
    return repr(obj)


def _find_scheduler_callback(trainer: Any) -> Any:
    # Structural lookup, like FTS's own resolver: the scheduler is the callback with a schedule and a max depth.
    for cb in trainer.callbacks:
        if hasattr(cb, "ft_schedule") and hasattr(cb, "max_depth"):
            return cb
    return None


def _param_groups(trainer: Any, names_by_id: dict[int, str]) -> list[dict[str, Any]]:
    if not trainer.optimizers:
        return []
    return [
        {
            "lr": _float(pg.get("lr")),
            "initial_lr": _float(pg.get("initial_lr")),
            "weight_decay": _float(pg.get("weight_decay")),
            "n_params": len(pg["params"]),
            "params": [names_by_id.get(id(p), "<unnamed>") for p in pg["params"]],
        }
        for pg in trainer.optimizers[0].param_groups
    ]


def _optimizer_record(trainer: Any) -> dict[str, Any] | None:
    if not trainer.optimizers:
        return None
    optimizer = trainer.optimizers[0]
    return {"class": type(optimizer).__name__, "default_lr": _float(optimizer.defaults.get("lr"))}


def _lr_scheduler_record(trainer: Any) -> dict[str, Any] | None:
    configs = getattr(trainer, "lr_scheduler_configs", None)
    if not configs:
        return None
    sched = configs[0].scheduler
    return {
        "class": type(sched).__name__,
        "last_epoch": getattr(sched, "last_epoch", None),
        "base_lrs": [_float(x) for x in getattr(sched, "base_lrs", [])],
    }


def _early_stopping(trainer: Any) -> dict[str, Any] | None:
    es = trainer.early_stopping_callback
    if es is None:
        return None
    return {
        "class": type(es).__name__,
        "patience": es.patience,
        "wait_count": es.wait_count,
        "best_score": _float(es.best_score),
        "stopped_epoch": es.stopped_epoch,
    }


def _checkpoint(trainer: Any) -> dict[str, Any] | None:
    ckpt = trainer.checkpoint_callback
    if ckpt is None:
        return None
    return {
        "class": type(ckpt).__name__,
        "best_model_score": _float(ckpt.best_model_score),
        "best_model": os.path.basename(ckpt.best_model_path or ""),
        "kth_best_model": os.path.basename(ckpt.kth_best_model_path or ""),
        "best_k_models": {os.path.basename(k): _float(v) for k, v in sorted(ckpt.best_k_models.items())},
        "current_ckpt_depth": getattr(ckpt, "current_ckpt_depth", None),
        "best_ckpt_depth": getattr(ckpt, "best_ckpt_depth", None),
    }


def _fts_private(fts: Any) -> dict[str, Any]:
    """FTS internals used by fts_behavior.md §8's state tuples; best effort, never compared across implementations."""
    state = getattr(fts, "_fts_state", None)
    out: dict[str, Any] = {}
    if state is not None:
        meta = getattr(state, "_fts_ckpt_metadata", {}) or {}
        out.update(
            ft_epoch=getattr(state, "_ft_epoch", None),
            meta_current_ckpt_depth=meta.get("current_ckpt_depth"),
            meta_best_ckpt_depth=meta.get("best_ckpt_depth"),
            meta_best_ckpt_pgs=len(meta.get("best_ckpt_pgs", {}) or {}),
            curr_thawed_params=len(getattr(state, "_curr_thawed_params", []) or []),
        )
    iom = getattr(fts, "_internal_optimizer_metadata", None)
    if isinstance(iom, dict) and 0 in iom:
        out["internal_optimizer_metadata_pgs"] = len(iom[0])
        out["internal_optimizer_metadata_lrs"] = [_float(pg.get("lr")) for pg in iom[0]]
    return out


def _weights(pl_module: Any) -> dict[str, Any]:
    total = hashlib.sha256()
    tensors: dict[str, Any] = {}
    for name, param in pl_module.state_dict().items():
        data = param.detach().cpu().contiguous()
        raw = data.numpy().tobytes()
        total.update(name.encode())
        total.update(raw)
        tensors[name] = {
            "sha256": hashlib.sha256(raw).hexdigest(),
            "shape": list(data.shape),
            "values": data.flatten().tolist(),
        }
    return {"sha256": total.hexdigest(), "tensors": tensors}


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix in {".yaml", ".ckpt"})


def make_recorder(callback_base: type, root: Path) -> Any:
    """Build the recording callback (a subclass of Lightning's ``Callback``, passed in to keep imports lazy)."""

    class TraceRecorder(callback_base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.epochs: list[dict[str, Any]] = []
            self.end: dict[str, Any] | None = None

        def _snapshot(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
            fts = _find_scheduler_callback(trainer)
            names_by_id = {id(p): n for n, p in pl_module.named_parameters()}
            return {
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "curr_depth": getattr(fts, "curr_depth", None),
                "depth_remaining": getattr(fts, "depth_remaining", None),
                "max_depth": getattr(fts, "max_depth", None),
                "trainable": sorted(n for n, p in pl_module.named_parameters() if p.requires_grad),
                "param_groups": _param_groups(trainer, names_by_id),
                "optimizer": _optimizer_record(trainer),
                "lr_scheduler": _lr_scheduler_record(trainer),
                "early_stopping": _early_stopping(trainer),
                "checkpoint": _checkpoint(trainer),
                "val_loss": _float(trainer.callback_metrics.get("val_loss")),
                "fts_private": _fts_private(fts),
            }

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.epochs.append(self._snapshot(trainer, pl_module))

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            fts = _find_scheduler_callback(trainer)
            end = self._snapshot(trainer, pl_module)
            end.update(
                stop_epoch=trainer.current_epoch,
                epochs_completed=trainer.fit_loop.epoch_progress.current.completed,
                callbacks=[type(cb).__name__ for cb in trainer.callbacks],
                ft_schedule=_jsonable(getattr(fts, "ft_schedule", None)),
                files=_files(root),
                weights=_weights(pl_module),
            )
            self.end = end

    return TraceRecorder()


# ---------------------------------------------------------------------------------------------------------------
# The fixture model and one scenario run
# ---------------------------------------------------------------------------------------------------------------


def make_model(**kwargs: Any) -> Any:
    # Imported here, not at the top: `--list` and the import-error path must work without torch.
    from _fixture_model import FixtureModel

    return FixtureModel(**kwargs)


def _schedule_arg(kind: str | None, workdir: Path) -> Any:
    if kind is None:
        return None
    if kind == "dict":
        return _explicit_dict()
    if kind in REINIT_SCHEDULES:
        return copy.deepcopy(REINIT_SCHEDULES[kind])
    text = {
        "file": EXPLICIT_SCHEDULE_YAML,
        "file_lr_string": EXPLICIT_SCHEDULE_YAML.replace("lr: 1.0e-06", "lr: 1e-06"),
        "epoch_only_file": EPOCH_ONLY_SCHEDULE_YAML,
    }[kind]
    path = workdir / "input_schedule" / f"{kind}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _fit(spec: dict[str, Any], workdir: Path, ckpt_path: str | None = None, stateful: bool = False) -> tuple[Any, Any]:
    """One seeded ``Trainer.fit`` of the fixture as ``spec`` describes; returns (trainer, recorder)."""
    from lightning.pytorch import Trainer, seed_everything
    from lightning.pytorch.callbacks import Callback

    from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping

    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    seed_everything(42, verbose=False)
    model = make_model(**spec.get("model", {}))
    callbacks: list[Any] = []
    es_kwargs = spec.get("es", DEFAULT_ES)
    if es_kwargs is not None:
        callbacks.append(FTSEarlyStopping(**es_kwargs))
    ckpt_kwargs = spec.get("ckpt", DEFAULT_CKPT)
    if ckpt_kwargs is not None:
        callbacks.append(FTSCheckpoint(**ckpt_kwargs))
    fts_kwargs = dict(spec.get("fts", {}))
    schedule = _schedule_arg(spec.get("schedule"), workdir)
    if schedule is not None:
        fts_kwargs["ft_schedule"] = schedule
    callbacks.append(FinetuningScheduler(**fts_kwargs))
    recorder = make_recorder(Callback, root)
    callbacks.append(recorder)  # after the scheduler, so its epoch-start hook has already run
    trainer = Trainer(
        default_root_dir=str(root),
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
        devices=1,
        **{**DEFAULT_TRAINER, **spec.get("trainer", {})},
    )
    if stateful:
        # Lightning's stateful form: `trainer.ckpt_path` is already set when callbacks' `setup` runs, whereas
        # `fit(ckpt_path=...)` only sets it later, while restoring.
        trainer.ckpt_path = ckpt_path
        trainer.fit(model)
    else:
        trainer.fit(model, ckpt_path=ckpt_path)
    return trainer, recorder


def run_scenario(spec: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Run a scenario; a ``resume`` scenario first trains ``resume.first`` and then resumes from its checkpoint."""
    result: dict[str, Any] = {}
    ckpt_path = None
    resume = spec.get("resume")
    if resume is not None:
        first_trainer, first = _fit(resume["first"], workdir / "first")
        result["first_fit"] = {"epochs": first.epochs, "end": first.end}
        attr = {"best": "best_model_path", "kth": "kth_best_model_path", "last": "last_model_path"}[resume["from"]]
        ckpt_path = getattr(first_trainer.checkpoint_callback, attr)
        result["resumed_from"] = os.path.basename(ckpt_path)
    _, recorder = _fit(spec, workdir / "main", ckpt_path, stateful=bool(resume and resume.get("stateful")))
    result.update(epochs=recorder.epochs, end=recorder.end)
    return result


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def _environment() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.executable}
    for mod in ("torch", "lightning", "finetuning_scheduler"):
        try:
            m = __import__(mod)
            info[mod] = {"version": getattr(m, "__version__", "?"), "file": getattr(m, "__file__", None)}
        except Exception as err:  # reported, never fatal here
            info[mod] = {"error": f"{type(err).__name__}: {err}"}
    return info


def _import_problem() -> str | None:
    try:
        from finetuning_scheduler import FinetuningScheduler, FTSCheckpoint, FTSEarlyStopping  # noqa: F401
    except Exception:
        return traceback.format_exc()
    return None


def _write(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)


def _run_one(name: str, out: Path, env: dict[str, Any], problem: str | None) -> str:
    payload: dict[str, Any] = {"scenario": name, "spec": _jsonable(SCENARIOS[name]), "environment": env}
    if problem is not None:
        payload.update(status="import_error", error=problem)
        _write(out / f"{name}.json", payload)
        return "import_error"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"parity-{name}-") as tmp:
        try:
            payload.update(run_scenario(copy.deepcopy(SCENARIOS[name]), Path(tmp)), status="ok")
        except BaseException as err:  # a scenario that crashes (even SystemExit) must not stop the others
            payload.update(status="error", error=f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
    payload["seconds"] = round(time.perf_counter() - started, 2)
    _write(out / f"{name}.json", payload)
    return str(payload["status"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the <scenario>.json traces")
    parser.add_argument("--scenarios", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--list", action="store_true", help="print the scenario names and exit")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1: reproducible)")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SCENARIOS))
        return 0
    if args.out is None:
        parser.error("--out is required")
    names = [n for n in args.scenarios.split(",") if n] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios: {unknown}")
    args.out.mkdir(parents=True, exist_ok=True)
    problem = _import_problem()
    if problem is None:
        import torch

        torch.set_num_threads(args.threads)
    env = _environment()
    for name in names:
        status = _run_one(name, args.out, env, problem)
        print(f"{name}: {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
