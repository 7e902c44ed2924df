#!/usr/bin/env bash
# Create .venv at the repository root (if missing) and install anomalib-ea2d with its test tools.
# Re-running is cheap: pip only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --no-cache-dir --upgrade pip
# torch first, on its own: the one CPU/CUDA build the machine's pip configuration provides.
.venv/bin/python -m pip install --quiet --no-cache-dir 'torch>=2.10' torchvision
.venv/bin/python -m pip install --quiet --no-cache-dir -e '.[dev]'
.venv/bin/python -c "import anomalib_ea2d, anomalib.models as m; assert m.EA2D is anomalib_ea2d.EA2D" 2>/dev/null \
  || { echo "anomalib-ea2d is installed but EA2D is not registered with anomalib; reinstall with: rm -rf .venv && bash scripts/setup.sh" >&2; exit 1; }
echo "anomalib-ea2d installed in $(pwd)/.venv"
