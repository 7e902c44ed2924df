"""Shared fixtures: the reference-parity fixture folder, one intra-op thread for training-heavy modules, and
the removal of each module's temporary folders once it passed (every fit writes a ~220 MB checkpoint)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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


_FAILED_MODULES: set[str] = set()
"""Modules with a failed or erroring test: their temporary folders are kept for inspection."""
_SESSION_PATHS: set[Path] = set()
"""Paths that session-scoped fixtures returned: the folders holding them outlive every module."""


class _SessionFixturePaths:
    """Plugin that remembers the paths session-scoped fixtures return (alone, or in a tuple, list or dict).

    Registered for the whole session: a session fixture is set up through the session's hooks, which a
    conftest's own hook functions do not join.
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest) -> Iterator[object]:
        result = yield
        if fixturedef.scope == "session":
            values = list(result.values()) if isinstance(result, dict) else result
            for value in values if isinstance(values, tuple | list) else [values]:
                if isinstance(value, str | os.PathLike):
                    _SESSION_PATHS.add(Path(value).resolve())
        return result


def pytest_configure(config: pytest.Config) -> None:
    """Register :class:`_SessionFixturePaths`."""
    config.pluginmanager.register(_SessionFixturePaths(), "ea2d-session-fixture-paths")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """Remember the module of every failed setup, call or teardown."""
    report = yield
    if report.failed:
        module = item.getparent(pytest.Module)
        _FAILED_MODULES.add(module.nodeid if module is not None else item.nodeid)
    return report


@pytest.fixture(scope="module", autouse=True)
def _remove_module_temp_folders(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Delete the folders a module's fixtures made with ``tmp_path_factory`` once the module passed.

    ``tmp_path_retention_policy = "failed"`` (pyproject) removes each passing test's ``tmp_path``; module
    fixtures' folders would otherwise live until the session ends, and a full run would hold ~20 GB of
    checkpoints on a disk that may not have them.
    """
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    yield
    if request.node.nodeid in _FAILED_MODULES:
        return
    for folder in set(base.iterdir()) - before:
        kept = any(path.is_relative_to(folder.resolve()) for path in _SESSION_PATHS)
        if folder.is_dir() and not folder.is_symlink() and not kept:
            shutil.rmtree(folder, ignore_errors=True)
