"""A plugin adapter's hook that raises is reported with the adapter, who provides it and the hook; the original
exception stays chained. Built-in adapters are not wrapped."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
from fts_support import BoringFTSModel, fit_kwargs

from finetuning_scheduler import FinetuningScheduler
from finetuning_scheduler.shell.lightning._hook_faults import HOOKS, AdapterHookError

SCHEDULE = {0: {"params": ["model.3.*"], "max_transition_epoch": 1}, 1: {"params": ["model.[0-2].*"]}}


@pytest.mark.parametrize(
    ("adapter", "hook", "cause"),
    [
        ("FailsBeforeInit", "on_before_init_fts", RuntimeError),
        ("FailsToTranslate", "fts_optim_transform", KeyError),
        ("FailsOnPhaseChange", "on_trainable_changed", ValueError),
        ("FailsToSave", "lightning_module_state_dict", OSError),
    ],
)
def test_a_failing_plugin_hook_names_the_adapter_and_the_hook(
    tmp_path: Path, adapter: str, hook: str, cause: type[Exception]
) -> None:
    fts = FinetuningScheduler(
        ft_schedule=SCHEDULE, custom_strategy_adapters={"single_device": f"faulty_adapters:{adapter}"}
    )
    trainer = pl.Trainer(callbacks=[fts], **fit_kwargs(tmp_path, max_epochs=3))
    with pytest.raises(AdapterHookError) as raised:
        trainer.fit(BoringFTSModel())
    error = raised.value
    assert (error.adapter, error.hook) == (f"faulty_adapters.{adapter}", hook)
    assert "path adapter 'faulty_adapters:" in error.provider
    assert isinstance(error.__cause__, cause)
    assert f"raised in its hook {hook}: {cause.__name__}" in str(error)


def test_every_override_point_is_guarded() -> None:
    assert {"on_before_init_fts", "validate_ft_sched", "fts_optim_transform", "on_trainable_changed"} <= set(HOOKS)
    assert "connect" not in HOOKS


def test_a_built_in_adapter_s_own_errors_are_not_wrapped(tmp_path: Path) -> None:
    fts = FinetuningScheduler(ft_schedule={0: {"params": ["model.3.*"]}, 1: {"params": ["nope.*"]}})
    with pytest.raises(Exception) as raised:
        pl.Trainer(callbacks=[fts], **fit_kwargs(tmp_path)).fit(BoringFTSModel())
    assert not isinstance(raised.value, AdapterHookError) and "no-match" in str(raised.value)
