"""The command line: ``python -m finetuning_scheduler COMMAND`` (and the ``fts-fc`` console script)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import demo


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch a subcommand; returns the process exit status.

    >>> main(["demo", "--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    SystemExit: 0
    """
    parser = argparse.ArgumentParser(prog="python -m finetuning_scheduler")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_arguments(commands.add_parser("demo", help=demo.SUMMARY, description=demo.SUMMARY))
    args = parser.parse_args(argv)
    return demo.run(args)


__all__ = ["main"]
