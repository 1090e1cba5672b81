"""``python -m finetuning_scheduler demo``: the command-line entry of the package (``shell/app``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (imported on call, so importing this module loads nothing heavy)."""
    from finetuning_scheduler.shell.app.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
