"""anomalib's ``Engine`` as the tests run it: on one CPU, without logger, progress bar or model summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anomalib.engine import Engine

QUIET_CPU: dict[str, Any] = {
    "accelerator": "cpu",
    "devices": 1,
    "logger": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}
"""Trainer settings of every test engine (``cpu_engine``'s keyword arguments win over them)."""


def cpu_engine(root: Path, **kwargs: Any) -> Engine:
    """An ``Engine`` writing under ``root`` with :data:`QUIET_CPU`; ``kwargs`` add or override trainer settings."""
    return Engine(default_root_dir=root, **{**QUIET_CPU, **kwargs})
