"""Br35H split builder (``anomalib_ea2d.data.br35h``): folder and flat layouts, numbering rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalib_ea2d.data.br35h import PAPER_COUNTS, prepare_br35h
from anomalib_ea2d.data.splits import TEST_NORMAL_DIR, TRAIN_DIR, SplitCounts
from tests.helpers.raw_splits import names, stub


def test_br35h_full_size_tree_gives_the_paper_counts(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "Br35H"
    for i in range(1500):
        stub(raw / "no" / f"no{i}.jpg")
        stub(raw / "yes" / f"y{i}.jpg")
    stub(raw / "pred" / "pred0.jpg")
    split = prepare_br35h(tmp_path / "raw", tmp_path / "out", link="hardlink")  # default: the paper's counts
    assert split.counts == PAPER_COUNTS
    train = names(tmp_path / "out" / TRAIN_DIR)
    assert train == {f"no{i}.jpg" for i in range(1000)}
    assert "no1000.jpg" in names(tmp_path / "out" / TEST_NORMAL_DIR)


def test_br35h_flat_layout_and_odd_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for name in ["no5.jpg", "No (999).png", "no1000.jpg", "NO1200.jpeg", "y0.jpg", "Y12.JPG", "yes7.png"]:
        stub(raw / name)
    split = prepare_br35h(raw, tmp_path / "out", expected_counts=None)
    assert split.counts == SplitCounts(2, 2, 3)
    assert names(tmp_path / "out" / TRAIN_DIR) == {"no5.jpg", "No (999).png"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["no1.jpg", "no01.png", "y1.jpg"], "share the number 1"),
        (["no.jpg", "y1.jpg"], "no number"),
        (["no1.jpg", "scan3.jpg"], "cannot tell the class"),
    ],
)
def test_br35h_naming_problems_are_errors(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        stub(tmp_path / "raw" / name)
    with pytest.raises(ValueError, match=message):
        prepare_br35h(tmp_path / "raw", tmp_path / "out", expected_counts=None)
