"""Shared fixtures: the reference-parity fixture location and one intra-op thread for training-heavy modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO_ROOT = Path(__file__).resolve().parents[1]
PARITY_DIR = Path(os.environ.get("EA2D_PARITY_DIR", REPO_ROOT.parent / "shared" / "parity"))


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Directory of the reference-parity fixture (``../shared/parity`` beside the repository)."""
    if not (PARITY_DIR / "make_state_dict.py").is_file():
        pytest.skip(f"reference-parity fixture not found at {PARITY_DIR} (set EA2D_PARITY_DIR)")
    return PARITY_DIR


@pytest.fixture(scope="module")
def one_thread() -> object:
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``).

    On a loaded 2-core machine, spinning OpenMP threads make training ~5x slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
