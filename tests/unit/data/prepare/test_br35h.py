"""Br35H split builder (``anomalib_ea2d.data.prepare.br35h``): folder and flat layouts, numbering rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalib_ea2d.data.layout import TEST_ABNORMAL_DIR, TEST_NORMAL_DIR, TRAIN_DIR
from anomalib_ea2d.data.prepare.br35h import PAPER_COUNTS, prepare_br35h
from anomalib_ea2d.data.prepare.splits import SplitCounts
from tests.helpers.raw_splits import names, stub, written_counts

# The EA2D paper's Br35H split, written out here rather than taken from the module under test:
# the 1500 "no" images numbered 0-999 train, 1000-1499 are the normal test images, all 1500 "yes" are abnormal.
PAPER_SPLIT = SplitCounts(train_normal=1000, test_normal=500, test_abnormal=1500)


def _full_size_tree(raw: Path, normal: int = 1500, abnormal: int = 1500) -> Path:
    for i in range(normal):
        stub(raw / "Br35H" / "no" / f"no{i}.jpg")
    for i in range(abnormal):
        stub(raw / "Br35H" / "yes" / f"y{i}.jpg")
    stub(raw / "Br35H" / "pred" / "pred0.jpg")  # the download's unlabelled images: not part of the split
    return raw


def test_the_module_states_the_papers_counts() -> None:
    assert PAPER_COUNTS == PAPER_SPLIT


def test_br35h_full_size_tree_gives_the_paper_counts(tmp_path: Path) -> None:
    raw = _full_size_tree(tmp_path / "raw")
    split = prepare_br35h(raw, tmp_path / "out", link="hardlink")  # default: the paper's counts are checked
    assert split.counts == PAPER_SPLIT
    out = tmp_path / "out"
    assert written_counts(out) == PAPER_SPLIT
    assert names(out / TRAIN_DIR) == {f"no{i}.jpg" for i in range(1000)}
    assert names(out / TEST_NORMAL_DIR) == {f"no{i}.jpg" for i in range(1000, 1500)}
    assert names(out / TEST_ABNORMAL_DIR) == {f"y{i}.jpg" for i in range(1500)}


def test_br35h_checks_the_paper_counts_by_default(tmp_path: Path) -> None:
    """One abnormal image short of the paper's 1500: refused unless the count check is off."""
    raw = _full_size_tree(tmp_path / "raw", abnormal=1499)
    with pytest.raises(
        ValueError, match=r"1000 train / 500 normal test / 1499 abnormal test images.* 1000 / 500 / 1500"
    ):
        prepare_br35h(raw, tmp_path / "out", link="hardlink")
    split = prepare_br35h(raw, tmp_path / "out", link="hardlink", expected_counts=None)
    assert split.counts == SplitCounts(1000, 500, 1499)


def test_br35h_flat_layout_and_odd_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for name in ["no5.jpg", "No (999).png", "no1000.jpg", "NO1200.jpeg", "y0.jpg", "Y12.JPG", "yes7.png"]:
        stub(raw / name)
    split = prepare_br35h(raw, tmp_path / "out", expected_counts=None)
    assert split.counts == SplitCounts(2, 2, 3)
    assert written_counts(tmp_path / "out") == SplitCounts(2, 2, 3)
    assert names(tmp_path / "out" / TRAIN_DIR) == {"no5.jpg", "No (999).png"}
    assert names(tmp_path / "out" / TEST_NORMAL_DIR) == {"no1000.jpg", "NO1200.jpeg"}
    assert names(tmp_path / "out" / TEST_ABNORMAL_DIR) == {"y0.jpg", "Y12.JPG", "yes7.png"}


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
