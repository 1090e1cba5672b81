"""The demo's terminal output: per-epoch lines, a progress bar and the summary table, with rich or plain text."""

from __future__ import annotations

from typing import Any


class DemoConsole:
    """Per-epoch lines and the final summary: rich when available (and wanted), plain text otherwise."""

    def __init__(self, plain: bool) -> None:
        self._rich: Any = None
        self._progress: Any = None
        self._task: Any = None
        if not plain:
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                self._rich = Console()

    def line(self, text: str) -> None:
        if self._rich is not None:
            self._rich.print(text, highlight=False, soft_wrap=True)
        else:
            print(text, flush=True)

    def start(self, total: int) -> None:
        if self._rich is None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("fine-tuning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self._progress = Progress(*columns, console=self._rich, transient=True)
        self._progress.start()
        self._task = self._progress.add_task("epochs", total=total)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def epoch(self, row: dict[str, Any], total: int) -> None:
        lrs = ", ".join(f"{lr:.3g}" for lr in row["lrs"])
        text = (
            f"epoch {row['epoch']:>2}/{total}  phase {row['phase']}  trainable {row['trainable_share']:>6.1%}  "
            f"loss {row['train_loss']:.3f}/{row['val_loss']:.3f}  val_acc {row['val_acc']:>5.1%}  lr {lrs}"
        )
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, soft_wrap=True)
            self._progress.update(self._task, advance=1)
        else:
            print(text, flush=True)

    def summary(self, phases: list[dict[str, Any]], accuracy: float, n_val: int, seconds: float) -> None:
        headers = ("phase", "epochs", "trainable", "param-group lrs", "ended by")
        rows = [
            (
                str(p["phase"]),
                f"{p['first_epoch']}-{p['last_epoch']} ({p['epochs']})",
                f"{p['trainable_share']:.1%}",
                ", ".join(f"{lr:.3g}" for lr in p["lrs"]),
                p["ended_by"],
            )
            for p in phases
        ]
        closing = f"final validation accuracy: {accuracy:.1%} on {n_val} images; {seconds:.1f} s in all"
        if self._rich is not None:
            from rich.table import Table

            table = Table(title="fine-tuning phases")
            for header in headers:
                table.add_column(header)
            for row in rows:
                table.add_row(*row)
            self._rich.print(table)
            self._rich.print(f"[bold]{closing}[/bold]", highlight=False, soft_wrap=True)
            return
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        for cells in (headers, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        print(closing, flush=True)


__all__ = ["DemoConsole"]
