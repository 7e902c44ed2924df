"""Shared fixtures: the reference-parity fixture folder and one intra-op thread for training-heavy modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers.reference_weights import KEYS_FILE

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO_ROOT = Path(__file__).resolve().parents[1]
PARITY_ENV = "EA2D_PARITY_DIR"
"""Environment variable naming another parity-fixture folder to test against."""
DEFAULT_PARITY_DIR = REPO_ROOT / "tests" / "fixtures" / "parity"
"""The parity fixture committed with the tests."""


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Folder of the reference-parity fixture: ``tests/fixtures/parity``, or ``$EA2D_PARITY_DIR`` when set.

    A folder that does not exist fails the tests that need it (never a skip).
    """
    override = os.environ.get(PARITY_ENV)
    folder = Path(override) if override else DEFAULT_PARITY_DIR
    if not folder.is_dir():
        source = f"${PARITY_ENV}" if override else "the in-repo default"
        pytest.fail(f"reference-parity fixture folder {folder} (from {source}) does not exist", pytrace=False)
    return folder


@pytest.fixture(scope="session")
def parity_keys_file(parity_dir: Path) -> Path:
    """The reference key list of the parity folder, or the committed one if that folder has none."""
    own = parity_dir / "official_keys.json"
    if own.is_file():
        return own
    if not KEYS_FILE.is_file():
        pytest.fail(f"no official_keys.json in {parity_dir} nor at {KEYS_FILE}", pytrace=False)
    return KEYS_FILE


@pytest.fixture(scope="module")
def one_thread() -> object:
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``).

    On a loaded 2-core machine, spinning OpenMP threads make training ~5x slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
