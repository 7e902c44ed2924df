"""OCT2017 split builder (``anomalib_ea2d.data.prepare.oct2017``) on a small fake Kermany tree."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from anomalib_ea2d.data.layout import TEST_ABNORMAL_DIR, TEST_NORMAL_DIR, TRAIN_DIR
from anomalib_ea2d.data.prepare.oct2017 import prepare_oct2017
from anomalib_ea2d.data.prepare.splits import SplitCounts
from tests.helpers.raw_splits import names, oct_tree, written_counts


def test_oct2017_split(tmp_path: Path) -> None:
    raw = oct_tree(tmp_path / "raw")
    split = prepare_oct2017(raw, tmp_path / "out", expected_counts=SplitCounts(5, 2, 6))
    assert split.counts == SplitCounts(5, 2, 6)
    assert written_counts(tmp_path / "out") == split.counts
    assert all(name.startswith("NORMAL-train") for name in names(tmp_path / "out" / TRAIN_DIR))
    assert all(name.startswith("NORMAL-test") for name in names(tmp_path / "out" / TEST_NORMAL_DIR))
    assert {n.split("-")[0] for n in names(tmp_path / "out" / TEST_ABNORMAL_DIR)} == {"CNV", "DME", "DRUSEN"}
    assert split.class_counts == {"NORMAL": 2, "CNV": 2, "DME": 1, "DRUSEN": 3}
    rows = list(csv.DictReader((tmp_path / "out" / "split.csv").open()))
    assert len(rows) == split.counts.total
    assert {r["source_class"] for r in rows if r["split"] == "train"} == {"NORMAL"}


def test_oct2017_include_val_adds_val_to_test(tmp_path: Path) -> None:
    raw = oct_tree(tmp_path / "raw")
    split = prepare_oct2017(raw, tmp_path / "out", expected_counts=None, include_val=True)
    assert split.counts == SplitCounts(5, 3, 9)


def test_oct2017_count_mismatch_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    raw = oct_tree(tmp_path / "raw")
    with pytest.raises(ValueError, match=r"26315 / 250 / 750.*expected_counts=None"):
        prepare_oct2017(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()
