#!/usr/bin/env bash
# Set up, then run the EA2D demo on the synthetic brain-MRI set (about 10 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m anomalib_ea2d.demo --config configs/synthetic_brain.yaml --output results/demo "$@"
