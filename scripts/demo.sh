#!/usr/bin/env bash
# Set up, then run the EA2D demo on the synthetic brain-MRI set (about 10 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# -W: timm and anomalib warn about their own deprecated imports at import time; nothing a demo user can act on.
.venv/bin/python -W ignore::FutureWarning -m anomalib_ea2d.demo --config configs/synthetic_brain.yaml --output results/demo "$@"
