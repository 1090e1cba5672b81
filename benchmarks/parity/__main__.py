"""``python -m benchmarks.parity``: see run.py."""

import sys

from benchmarks.parity.run import main

sys.exit(main())
