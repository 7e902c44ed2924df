"""Reference-split builders of the paper datasets, on small fake trees of each raw layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from anomalib_ea2d.data.paper_datasets import (
    PAPER_DATASETS,
    TEST_ABNORMAL_DIR,
    TEST_NORMAL_DIR,
    TRAIN_DIR,
    SplitCounts,
    crop_fundus,
    prepare_aptos2019,
    prepare_br35h,
    prepare_dataset,
    prepare_isic2018,
    prepare_oct2017,
)
from anomalib_ea2d.data.prepare import main as prepare_main


def _image(path: Path, size: tuple[int, int] = (12, 10), value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def _stub(path: Path) -> Path:
    """A file that only has to be copied, never decoded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stub")
    return path


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _written_counts(out: Path) -> SplitCounts:
    return SplitCounts(*(len(list((out / f).iterdir())) for f in (TRAIN_DIR, TEST_NORMAL_DIR, TEST_ABNORMAL_DIR)))


# ----------------------------------------------------------------------------------------------- OCT2017


def _oct_tree(raw: Path) -> Path:
    """Kermany layout, nested in a folder whose name has a trailing space (as in the public zip)."""
    base = raw / "OCT2017 "
    layout = {
        "train": {"NORMAL": 5, "CNV": 3, "DME": 2, "DRUSEN": 1},
        "test": {"NORMAL": 2, "CNV": 2, "DME": 1, "DRUSEN": 3},
        "val": {"NORMAL": 1, "CNV": 1, "DME": 1, "DRUSEN": 1},
    }
    for part, classes in layout.items():
        for cls, n in classes.items():
            for i in range(n):
                _stub(base / part / cls / f"{cls}-{part}{i}-1.jpeg")
    _stub(base / "train" / "NORMAL" / ".DS_Store")
    return raw


def test_oct2017_split(tmp_path: Path) -> None:
    raw = _oct_tree(tmp_path / "raw")
    split = prepare_oct2017(raw, tmp_path / "out", expected_counts=SplitCounts(5, 2, 6))
    assert split.counts == SplitCounts(5, 2, 6)
    assert _written_counts(tmp_path / "out") == split.counts
    assert all(name.startswith("NORMAL-train") for name in _names(tmp_path / "out" / TRAIN_DIR))
    assert all(name.startswith("NORMAL-test") for name in _names(tmp_path / "out" / TEST_NORMAL_DIR))
    assert {n.split("-")[0] for n in _names(tmp_path / "out" / TEST_ABNORMAL_DIR)} == {"CNV", "DME", "DRUSEN"}
    assert split.class_counts == {"NORMAL": 2, "CNV": 2, "DME": 1, "DRUSEN": 3}
    rows = list(csv.DictReader((tmp_path / "out" / "split.csv").open()))
    assert len(rows) == split.counts.total
    assert {r["source_class"] for r in rows if r["split"] == "train"} == {"NORMAL"}


def test_oct2017_include_val_adds_val_to_test(tmp_path: Path) -> None:
    raw = _oct_tree(tmp_path / "raw")
    split = prepare_oct2017(raw, tmp_path / "out", expected_counts=None, include_val=True)
    assert split.counts == SplitCounts(5, 3, 9)


def test_oct2017_count_mismatch_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    raw = _oct_tree(tmp_path / "raw")
    with pytest.raises(ValueError, match=r"26315 / 250 / 750.*expected_counts=None"):
        prepare_oct2017(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_folder_is_protected_unless_overwrite(tmp_path: Path) -> None:
    raw = _oct_tree(tmp_path / "raw")
    out = tmp_path / "out"
    prepare_oct2017(raw, out, expected_counts=None)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare_oct2017(raw, out, expected_counts=None)
    prepare_oct2017(raw, out, expected_counts=None, overwrite=True, link="symlink")
    assert (out / "notes.txt").read_text() == "mine"
    assert all(p.is_symlink() for p in (out / TRAIN_DIR).iterdir())
    assert _written_counts(out) == SplitCounts(5, 2, 6)


# ----------------------------------------------------------------------------------------------- APTOS 2019


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
    assert _written_counts(tmp_path / "a") == expected
    assert _names(tmp_path / "a" / TRAIN_DIR) == _names(tmp_path / "b" / TRAIN_DIR)
    assert _names(tmp_path / "a" / TRAIN_DIR) != _names(tmp_path / "c" / TRAIN_DIR)
    # Train and normal test together are exactly the diagnosis-0 images.
    normal = _names(tmp_path / "a" / TRAIN_DIR) | _names(tmp_path / "a" / TEST_NORMAL_DIR)
    assert normal == {f"{i:04x}abcd.png" for i, g in enumerate(APTOS_GRADES) if g == 0}
    for path in (tmp_path / "a" / TEST_ABNORMAL_DIR).iterdir():
        assert Image.open(path).size == (32, 32)


def test_aptos2019_explicit_train_ids(tmp_path: Path) -> None:
    raw = _aptos_tree(tmp_path / "raw", APTOS_GRADES)
    ids = ["0000abcd", "0003abcd"]
    split = prepare_aptos2019(raw, tmp_path / "a", expected_counts=None, train_ids=ids, size=32, workers=1)
    assert _names(tmp_path / "a" / TRAIN_DIR) == {f"{i}.png" for i in ids}
    assert split.counts == SplitCounts(2, 10, 8)
    with pytest.raises(ValueError, match="diagnosis 0"):
        prepare_aptos2019(raw, tmp_path / "b", expected_counts=None, train_ids=["000cabcd"], size=32, workers=1)


def test_aptos2019_missing_image_is_reported(tmp_path: Path) -> None:
    raw = _aptos_tree(tmp_path / "raw", APTOS_GRADES)
    (raw / "train_images" / "0001abcd.png").unlink()
    with pytest.raises(FileNotFoundError, match="0001abcd"):
        prepare_aptos2019(raw, tmp_path / "out", expected_counts=None, workers=1)


def test_crop_fundus_boxes_the_largest_region() -> None:
    photo = Image.new("RGB", (200, 120))
    draw = ImageDraw.Draw(photo)
    draw.ellipse((50, 20, 129, 99), fill=(200, 100, 50))  # the fundus: 80 x 80 box at rows 20-99, cols 50-129
    draw.rectangle((185, 3, 188, 6), fill=(255, 255, 255))  # a bright speck, smaller: ignored
    side = 80 + 2 * 5
    crop = np.asarray(crop_fundus(photo, size=side, margin=5))
    expected = np.asarray(photo.crop((45, 15, 45 + side, 15 + side)))
    assert np.array_equal(crop, expected)
    # Boxes reaching past the border are padded with black.
    edge = Image.new("RGB", (100, 60))
    ImageDraw.Draw(edge).ellipse((0, 0, 59, 59), fill=(200, 100, 50))
    padded = np.asarray(crop_fundus(edge, size=70, margin=5))
    assert padded.shape == (70, 70, 3)
    assert padded[:5].max() == 0
    with pytest.raises(ValueError, match="no pixel brighter"):
        crop_fundus(Image.new("RGB", (20, 20)))


# ----------------------------------------------------------------------------------------------- ISIC2018

ISIC_CLASSES = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"]


def _isic_part(raw: Path, part: str, classes: list[str], start: int) -> None:
    input_dir = raw / f"ISIC2018_Task3_{part}_Input"
    truth_dir = raw / f"ISIC2018_Task3_{part}_GroundTruth"
    truth_dir.mkdir(parents=True)
    _stub(input_dir / "LICENSE.txt")
    with (truth_dir / f"ISIC2018_Task3_{part}_GroundTruth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *ISIC_CLASSES])
        for i, cls in enumerate(classes):
            image_id = f"ISIC_{start + i:07d}"
            _stub(input_dir / f"{image_id}.jpg")
            writer.writerow([image_id, *("1.0" if c == cls else "0.0" for c in ISIC_CLASSES)])


def test_isic2018_split(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _isic_part(raw, "Training", ["NV", "MEL", "NV", "BKL", "NV", "NV"], 0)
    _isic_part(raw, "Validation", ["NV", "MEL", "NV", "DF", "NV"], 100)
    split = prepare_isic2018(raw, tmp_path / "out", expected_counts=SplitCounts(4, 3, 2))
    assert split.counts == SplitCounts(4, 3, 2)
    assert _names(tmp_path / "out" / TEST_ABNORMAL_DIR) == {"ISIC_0000101.jpg", "ISIC_0000103.jpg"}
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


# ----------------------------------------------------------------------------------------------- Br35H


def test_br35h_full_size_tree_gives_the_paper_counts(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "Br35H"
    for i in range(1500):
        _stub(raw / "no" / f"no{i}.jpg")
        _stub(raw / "yes" / f"y{i}.jpg")
    _stub(raw / "pred" / "pred0.jpg")
    split = prepare_br35h(tmp_path / "raw", tmp_path / "out", link="hardlink")  # default: the paper's counts
    assert split.counts == PAPER_DATASETS["br35h"]
    train = _names(tmp_path / "out" / TRAIN_DIR)
    assert train == {f"no{i}.jpg" for i in range(1000)}
    assert "no1000.jpg" in _names(tmp_path / "out" / TEST_NORMAL_DIR)


def test_br35h_flat_layout_and_odd_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for name in ["no5.jpg", "No (999).png", "no1000.jpg", "NO1200.jpeg", "y0.jpg", "Y12.JPG", "yes7.png"]:
        _stub(raw / name)
    split = prepare_br35h(raw, tmp_path / "out", expected_counts=None)
    assert split.counts == SplitCounts(2, 2, 3)
    assert _names(tmp_path / "out" / TRAIN_DIR) == {"no5.jpg", "No (999).png"}


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["no1.jpg", "no01.png", "y1.jpg"], "share the number 1"),
        (["no.jpg", "y1.jpg"], "no number"),
        (["no1.jpg", "scan3.jpg"], "cannot tell the class"),
    ],
)
def test_br35h_naming_problems_are_errors(tmp_path: Path, names: list[str], message: str) -> None:
    for name in names:
        _stub(tmp_path / "raw" / name)
    with pytest.raises(ValueError, match=message):
        prepare_br35h(tmp_path / "raw", tmp_path / "out", expected_counts=None)


# ----------------------------------------------------------------------------------------------- dispatch and CLI


def test_prepare_dataset_dispatch_and_unknown_name(tmp_path: Path) -> None:
    for name in ["no1.jpg", "y1.jpg"]:
        _stub(tmp_path / "raw" / name)
    assert prepare_dataset("Br35H", tmp_path / "raw", tmp_path / "out", expected_counts=None).counts.total == 2
    with pytest.raises(ValueError, match="Unknown dataset"):
        prepare_dataset("mvtec", tmp_path / "raw", tmp_path / "x")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ["no1.jpg", "no1001.jpg", "y1.jpg"]:
        _image(tmp_path / "raw" / name)
    out = tmp_path / "out"
    assert prepare_main(["br35h", "--raw", str(tmp_path / "raw"), "--out", str(out)]) == 2
    assert "--no-count-check" in capsys.readouterr().err
    assert prepare_main(["br35h", "--raw", str(tmp_path / "raw"), "--out", str(out), "--no-count-check"]) == 0
    printed = capsys.readouterr().out
    assert "1 train, 1 normal test, 1 abnormal test" in printed
    assert "configs/br35h.yaml" in printed
    assert _written_counts(out) == SplitCounts(1, 1, 1)
