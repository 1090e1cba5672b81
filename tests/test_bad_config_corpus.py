"""The bad-configuration corpus (``tests/corpus/configs.yaml``): bad constructor arguments, adapter references and
``strategy_adapter_cfg``. Each case must end in its named error, with the message fragments it lists, before any
training step of a real ``Trainer.fit``; never a traceback from inside the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import yaml
from fts_support import BoringFTSModel, fit_kwargs

from finetuning_scheduler import FinetuningScheduler

CASES: dict[str, dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "corpus" / "configs.yaml").read_text())


class NoStep(pl.Callback):
    def on_train_batch_start(self, *args: Any) -> None:
        raise AssertionError("a training step ran with a broken configuration")


def _failure(tmp_path: Path, kwargs: dict[str, Any]) -> BaseException:
    try:
        fts = FinetuningScheduler(**kwargs)
        pl.Trainer(**fit_kwargs(tmp_path, max_epochs=1), callbacks=[fts, NoStep()]).fit(BoringFTSModel())
    except Exception as exc:  # the case's own error is checked below
        return exc
    raise AssertionError("the configuration was accepted")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_bad_configuration_is_one_clear_error_before_any_step(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    failure = _failure(tmp_path, case["kwargs"])
    assert case["error"] in {cls.__name__ for cls in type(failure).__mro__}, repr(failure)
    message = str(failure)
    missing = [fragment for fragment in case["says"] if fragment not in message]
    assert not missing, f"{name}: {missing} not in: {message}"
    assert not isinstance(failure, AssertionError)
