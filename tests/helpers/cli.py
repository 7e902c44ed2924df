"""Environment of the ``anomalib`` subprocesses the tests start: this checkout's package, registered by the hook.

``PYTHONPATH`` is set to the root of the checkout the tests belong to, so that a subprocess imports
*this* checkout's ``anomalib_ea2d`` (a git worktree's tests would otherwise run the package the
virtual environment was installed from). ``EA2D`` still has to be registered by the installed
start-up hook (``anomalib_ea2d_hook.pth``), which imports ``anomalib_ea2d._hook`` from this path.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
"""Root of the checkout holding these tests (the folder with ``anomalib_ea2d/`` and ``tests/``)."""


def cli_env(**extra: str) -> dict[str, str]:
    """``os.environ`` with unbuffered output, ``PYTHONPATH`` = :data:`CHECKOUT`, and ``extra`` on top.

    Example:
        >>> cli_env(OMP_NUM_THREADS="1")["PYTHONPATH"] == str(CHECKOUT)
        True
    """
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(CHECKOUT), **extra}
