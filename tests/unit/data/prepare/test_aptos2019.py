"""APTOS 2019 split builder (``anomalib_ea2d.data.prepare.aptos2019``) on a small fake competition download."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from anomalib_ea2d.data.layout import TEST_ABNORMAL_DIR, TEST_NORMAL_DIR, TRAIN_DIR
from anomalib_ea2d.data.prepare.aptos2019 import prepare_aptos2019
from anomalib_ea2d.data.prepare.splits import SplitCounts
from tests.helpers.raw_splits import names, written_counts


def _fundus(path: Path, size: tuple[int, int], box: tuple[int, int, int, int]) -> Path:
    image = Image.new("RGB", size)
    ImageDraw.Draw(image).ellipse(box, fill=(180, 90, 40))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _aptos_tree(raw: Path, grades: list[int]) -> Path:
    rows = []
    for i, grade in enumerate(grades):
        id_code = f"{i:04x}abcd"
        _fundus(raw / "train_images" / f"{id_code}.png", (60 + i % 3 * 10, 50), (10, 5, 50, 45))
        rows.append({"id_code": id_code, "diagnosis": grade})
    with (raw / "train.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id_code", "diagnosis"])
        writer.writeheader()
        writer.writerows(rows)
    return raw


APTOS_GRADES = [0] * 12 + [1, 2, 2, 3, 4, 4, 1, 2]


def test_aptos2019_split_is_seeded_and_complete(tmp_path: Path) -> None:
    raw = _aptos_tree(tmp_path / "raw", APTOS_GRADES)
    expected = SplitCounts(5, 7, 8)
    first = prepare_aptos2019(raw, tmp_path / "a", expected_counts=expected, num_train=5, size=32, workers=1)
    prepare_aptos2019(raw, tmp_path / "b", expected_counts=expected, num_train=5, size=32, workers=1)
    prepare_aptos2019(raw, tmp_path / "c", expected_counts=expected, num_train=5, seed=2, size=32, workers=1)
    assert first.counts == expected
    assert written_counts(tmp_path / "a") == expected
    assert names(tmp_path / "a" / TRAIN_DIR) == names(tmp_path / "b" / TRAIN_DIR)
    assert names(tmp_path / "a" / TRAIN_DIR) != names(tmp_path / "c" / TRAIN_DIR)
    # Train and normal test together are exactly the diagnosis-0 images.
    normal = names(tmp_path / "a" / TRAIN_DIR) | names(tmp_path / "a" / TEST_NORMAL_DIR)
    assert normal == {f"{i:04x}abcd.png" for i, g in enumerate(APTOS_GRADES) if g == 0}
    for path in (tmp_path / "a" / TEST_ABNORMAL_DIR).iterdir():
        assert Image.open(path).size == (32, 32)


def test_aptos2019_explicit_train_ids(tmp_path: Path) -> None:
    raw = _aptos_tree(tmp_path / "raw", APTOS_GRADES)
    ids = ["0000abcd", "0003abcd"]
    split = prepare_aptos2019(raw, tmp_path / "a", expected_counts=None, train_ids=ids, size=32, workers=1)
    assert names(tmp_path / "a" / TRAIN_DIR) == {f"{i}.png" for i in ids}
    assert split.counts == SplitCounts(2, 10, 8)
    with pytest.raises(ValueError, match="diagnosis 0"):
        prepare_aptos2019(raw, tmp_path / "b", expected_counts=None, train_ids=["000cabcd"], size=32, workers=1)


def test_aptos2019_missing_image_is_reported(tmp_path: Path) -> None:
    raw = _aptos_tree(tmp_path / "raw", APTOS_GRADES)
    (raw / "train_images" / "0001abcd.png").unlink()
    with pytest.raises(FileNotFoundError, match="0001abcd"):
        prepare_aptos2019(raw, tmp_path / "out", expected_counts=None, workers=1)
