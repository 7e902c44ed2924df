"""Dispatch and command line of the paper datasets' preparation (``anomalib_ea2d.data.prepare``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomalib_ea2d.data import PAPER_DATASETS, prepare_dataset
from anomalib_ea2d.data.prepare import PREPARERS
from anomalib_ea2d.data.prepare import main as prepare_main
from anomalib_ea2d.data.prepare.splits import SplitCounts
from tests.helpers.raw_splits import image, stub, written_counts


def test_prepare_dataset_dispatch_and_unknown_name(tmp_path: Path) -> None:
    for name in ["no1.jpg", "y1.jpg"]:
        stub(tmp_path / "raw" / name)
    assert prepare_dataset("Br35H", tmp_path / "raw", tmp_path / "out", expected_counts=None).counts.total == 2
    with pytest.raises(ValueError, match="Unknown dataset"):
        prepare_dataset("mvtec", tmp_path / "raw", tmp_path / "x")


def test_every_dataset_has_a_preparer_and_paper_counts() -> None:
    assert sorted(PAPER_DATASETS) == sorted(PREPARERS) == ["aptos2019", "br35h", "isic2018", "oct2017"]
    for key, preparer in PREPARERS.items():
        assert preparer.__name__ == f"prepare_{key}"
        assert preparer.__module__ == f"anomalib_ea2d.data.prepare.{key}"


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ["no1.jpg", "no1001.jpg", "y1.jpg"]:
        image(tmp_path / "raw" / name)
    out = tmp_path / "out"
    assert prepare_main(["br35h", "--raw", str(tmp_path / "raw"), "--out", str(out)]) == 2
    assert "--no-count-check" in capsys.readouterr().err
    assert prepare_main(["br35h", "--raw", str(tmp_path / "raw"), "--out", str(out), "--no-count-check"]) == 0
    printed = capsys.readouterr().out
    assert "1 train, 1 normal test, 1 abnormal test" in printed
    assert "configs/br35h.yaml" in printed
    assert written_counts(out) == SplitCounts(1, 1, 1)
