"""Every Python block of the README and docs/ runs: each page's blocks in order, in one namespace, on a tiny model
(the names a block leaves to the reader, such as ``model``, come from a small per-page setup, and ``Trainer`` runs
a couple of short CPU epochs). Interpreter sessions are run by tests/test_docs_blocks.py; two blocks are whole
files shown for reading, run by their own tests (see SKIP)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from fts_support import BoringFTSModel, fit_kwargs

import finetuning_scheduler

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = {0: {"params": ["model.3.*"], "max_transition_epoch": 1}, 1: {"params": ["model.[0-2].*"], "lr": 1e-3}}
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


class QuickTrainer(pl.Trainer):
    """``pl.Trainer`` with the docs' arguments, over two short, quiet CPU epochs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = fit_kwargs(Path.cwd(), max_epochs=2, limit_train_batches=2, limit_val_batches=2)
        if "strategy" in kwargs:  # a strategy the docs show for several devices: constructed, not launched
            settings.pop("devices")
        super().__init__(*args, **{**settings, **kwargs})


def _common(namespace: dict[str, Any]) -> None:
    namespace.update(torch=torch, pl=pl, Trainer=QuickTrainer, model=BoringFTSModel(), schedule_dict=SCHEDULE)
    namespace.update({name: getattr(finetuning_scheduler, name) for name in finetuning_scheduler.__all__})
    namespace.update(max_epochs=3, path=Path.cwd() / "state.ckpt", epoch=0)


def _own_trainer(namespace: dict[str, Any], block: int) -> None:
    if block == 2:  # the plateau loop: the reader's own training and validation
        namespace.update(train_one_epoch=lambda: None, validate=lambda: 1.0)
    if block in (4, 6):  # resuming: a new run, built as the page's first block builds it (up to its training loop)
        building = _first_block("docs/own-trainer.md").split("\nfor ")[0]
        namespace["model"] = BoringFTSModel()
        exec(compile(building, "docs/own-trainer.md (block 0)", "exec"), namespace)
    if block == 5:
        from lightning.fabric import Fabric

        namespace["fabric"] = Fabric(accelerator="cpu", devices=1)
    if block == 7:  # the Hugging Face Trainer: its own model, arguments and data
        pytest.importorskip("transformers")
        pytest.importorskip("accelerate")
        from driver_support import load_example
        from transformers import Trainer, TrainingArguments

        example = load_example("hf_trainer")
        gpt2 = example.tiny_gpt2()
        Path("schedule.yaml").write_text(
            yaml.safe_dump(
                {
                    0: {"params": ["transformer.h.1.*", "transformer.ln_f.*"], "max_transition_epoch": 1},
                    1: {"params": ["transformer.h.0.*", "transformer.w.*"], "max_transition_epoch": 2},
                }
            )
        )
        rows = torch.randint(0, 100, (8, 16), generator=torch.Generator().manual_seed(0))
        namespace.update(
            model=gpt2,
            Trainer=Trainer,
            data=[{"input_ids": row, "labels": row} for row in rows],
            args=TrainingArguments(
                output_dir=str(Path.cwd() / "hf"),
                num_train_epochs=2,
                use_cpu=True,
                report_to=[],
                save_strategy="no",
                logging_strategy="no",
                disable_tqdm=True,
            ),
        )


SETUPS: dict[str, Callable[[dict[str, Any], int], None]] = {"docs/own-trainer.md": _own_trainer}
# Blocks that are whole files shown for reading (they are the examples, run by their own tests) or a plugin's
# module (run by tests/plugins/test_adapter_guide.py).
SKIP = {("docs/own-trainer.md", 1), ("docs/adapters.md", 3)}


def _first_block(page: str) -> str:
    match = BLOCK.search((ROOT / page).read_text())
    assert match is not None
    return match.group(1)


def _pages() -> list[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [str(page.relative_to(ROOT)) for page in pages if "```python" in page.read_text()]


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages())
def test_every_python_block_of_the_page_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pl, "Trainer", QuickTrainer)
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugins" / "fts_tl_names"))
    for name in ("my_schedule.yaml", "schedule.yaml", "sched.yaml"):
        Path(name).write_text(yaml.safe_dump(SCHEDULE))
    namespace: dict[str, Any] = {"__name__": "docs_block"}
    _common(namespace)
    for number, match in enumerate(BLOCK.finditer((ROOT / page).read_text())):
        code = match.group(1)
        if code.lstrip().startswith(">>>") or (page, number) in SKIP:
            continue
        SETUPS.get(page, lambda *_: None)(namespace, number)
        exec(compile(code, f"{page} (block {number})", "exec"), namespace)
