"""``gen --model REF``: write a default schedule for a model (to edit, or to use as it is)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from finetuning_scheduler.core import GenerationPolicy, dump_schedule, generate

from ..engine import inventory, write_schedule
from ._models import add_model_arguments, model_from_args

SUMMARY = "write a default fine-tuning schedule for a model"
_POLICIES = {"fts": GenerationPolicy.FTS, "blocks": GenerationPolicy.MODULE, "module": GenerationPolicy.MODULE}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_model_arguments(parser)
    parser.add_argument(
        "--policy",
        choices=sorted(_POLICIES),
        default="fts",
        help="fts: FTS's implicit schedule (two parameters per phase, last first); blocks: one phase per block",
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: standard output)")
    return parser


def run(args: argparse.Namespace) -> int:
    model = model_from_args(args, lambda text: print(text, file=sys.stderr))
    schedule = generate(inventory(model), _POLICIES[args.policy])
    if args.output is None:
        sys.stdout.write(dump_schedule(schedule))
    else:
        target = write_schedule(schedule, args.output)
        print(f"wrote {len(schedule.phases)} phases to {target}", file=sys.stderr)
    return 0


__all__ = ["SUMMARY", "add_arguments", "run"]
