"""Shared split machinery (``anomalib_ea2d.data.prepare.splits``): output protection and link modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalib_ea2d.data.layout import TRAIN_DIR
from anomalib_ea2d.data.prepare.oct2017 import prepare_oct2017
from anomalib_ea2d.data.prepare.splits import SplitCounts
from tests.helpers.raw_splits import oct_tree, written_counts


def test_output_folder_is_protected_unless_overwrite(tmp_path: Path) -> None:
    raw = oct_tree(tmp_path / "raw")
    out = tmp_path / "out"
    prepare_oct2017(raw, out, expected_counts=None)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare_oct2017(raw, out, expected_counts=None)
    prepare_oct2017(raw, out, expected_counts=None, overwrite=True, link="symlink")
    assert (out / "notes.txt").read_text() == "mine"
    assert all(p.is_symlink() for p in (out / TRAIN_DIR).iterdir())
    assert written_counts(out) == SplitCounts(5, 2, 6)


def test_expected_counts_and_link_mode_are_checked(tmp_path: Path) -> None:
    raw = oct_tree(tmp_path / "raw")
    with pytest.raises(ValueError, match="expected_counts must be 'paper', None or a SplitCounts"):
        prepare_oct2017(raw, tmp_path / "a", expected_counts="mine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown link mode 'move'"):
        prepare_oct2017(raw, tmp_path / "b", expected_counts=None, link="move")  # type: ignore[arg-type]
