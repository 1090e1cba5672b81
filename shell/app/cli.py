"""The command line: ``python -m finetuning_scheduler COMMAND`` (and the ``finetuning-scheduler`` console script).

Commands: ``demo`` (fine-tune a small model and show what happened), ``validate`` (check a schedule against a model
without training), ``plan`` (what each phase will do), ``gen`` (write a default schedule), ``plot`` (a run's
phases as a picture). Exit status: 0 success,
1 an invalid schedule, 2 a usage error (bad arguments, a model that cannot be built), said in one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from . import demo, gen, plan, plot, validate
from ._models import UsageError

COMMANDS: dict[str, ModuleType] = {"demo": demo, "validate": validate, "plan": plan, "gen": gen, "plot": plot}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch a subcommand; returns the process exit status.

    >>> main(["demo", "--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    SystemExit: 0
    >>> main(["gen", "--model", "no_such_module:build"])
    2
    """
    parser = argparse.ArgumentParser(prog="python -m finetuning_scheduler", description=__doc__.split("\n\n")[1])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=module.SUMMARY, description=module.SUMMARY))
    args = parser.parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args))
    except UsageError as problem:
        print(f"{parser.prog} {args.command}: error: {problem}", file=sys.stderr)
        return 2


__all__ = ["COMMANDS", "main"]
