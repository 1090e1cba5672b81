"""``python -m finetuning_scheduler demo``: the command-line entry of the package (see shell/demo.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch a subcommand; returns the process exit status."""
    from finetuning_scheduler.shell import demo

    parser = argparse.ArgumentParser(prog="python -m finetuning_scheduler")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_arguments(commands.add_parser("demo", help=demo.SUMMARY, description=demo.SUMMARY))
    args = parser.parse_args(argv)
    return demo.run(args)


if __name__ == "__main__":
    sys.exit(main())
