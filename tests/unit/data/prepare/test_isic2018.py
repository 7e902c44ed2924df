"""ISIC2018 task 3 split builder (``anomalib_ea2d.data.prepare.isic2018``) on a small fake challenge download."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from anomalib_ea2d.data.layout import TEST_ABNORMAL_DIR
from anomalib_ea2d.data.prepare.isic2018 import prepare_isic2018
from anomalib_ea2d.data.prepare.splits import SplitCounts
from tests.helpers.raw_splits import names, stub

ISIC_CLASSES = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]


def _isic_part(raw: Path, part: str, classes: list[str], start: int) -> None:
    input_dir = raw / f"ISIC2018_Task3_{part}_Input"
    truth_dir = raw / f"ISIC2018_Task3_{part}_GroundTruth"
    truth_dir.mkdir(parents=True)
    stub(input_dir / "LICENSE.txt")
    with (truth_dir / f"ISIC2018_Task3_{part}_GroundTruth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *ISIC_CLASSES])
        for i, cls in enumerate(classes):
            image_id = f"ISIC_{start + i:07d}"
            stub(input_dir / f"{image_id}.jpg")
            writer.writerow([image_id, *("1.0" if c == cls else "0.0" for c in ISIC_CLASSES)])


def test_isic2018_split(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _isic_part(raw, "Training", ["NV", "MEL", "NV", "BKL", "NV", "NV"], 0)
    _isic_part(raw, "Validation", ["NV", "MEL", "NV", "DF", "NV"], 100)
    split = prepare_isic2018(raw, tmp_path / "out", expected_counts=SplitCounts(4, 3, 2))
    assert split.counts == SplitCounts(4, 3, 2)
    assert names(tmp_path / "out" / TEST_ABNORMAL_DIR) == {"ISIC_0000101.jpg", "ISIC_0000103.jpg"}
    assert split.class_counts == {"NV": 3, "MEL": 1, "DF": 1}
    with pytest.raises(ValueError, match="6705 / 123 / 70"):
        prepare_isic2018(raw, tmp_path / "paper")


def test_isic2018_rejects_ambiguous_labels(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _isic_part(raw, "Training", ["NV"], 0)
    _isic_part(raw, "Validation", ["NV"], 100)
    truth = raw / "ISIC2018_Task3_Validation_GroundTruth" / "ISIC2018_Task3_Validation_GroundTruth.csv"
    truth.write_text(truth.read_text().replace("0.0,1.0,0.0", "1.0,1.0,0.0"))
    with pytest.raises(ValueError, match="exactly one"):
        prepare_isic2018(raw, tmp_path / "out", expected_counts=None)
