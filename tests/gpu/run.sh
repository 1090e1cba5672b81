#!/usr/bin/env bash
# The GPU checks on a one-GPU machine (about five minutes): FSDP1 and FSDP2 at world size 1, and the GPT-2-sized
# three-phase run with its memory and step-time table. Run from the repository root after `make install`
# (or with any environment that has the package and pytest installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-.venv/bin/python}
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
exec "$python" -m pytest tests/gpu -p no:randomly -s -q -rA "$@"
