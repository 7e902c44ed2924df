"""Fake raw downloads and output checks shared by the tests of the paper datasets' split builders."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from anomalib_ea2d.data.layout import TEST_ABNORMAL_DIR, TEST_NORMAL_DIR, TRAIN_DIR
from anomalib_ea2d.data.prepare.splits import SplitCounts


def image(path: Path, size: tuple[int, int] = (12, 10), value: int = 128) -> Path:
    """A small grey image that can be decoded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)
    return path


def stub(path: Path) -> Path:
    """A file that only has to be copied, never decoded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stub")
    return path


def names(folder: Path) -> set[str]:
    """File names in ``folder``."""
    return {p.name for p in folder.iterdir()}


def written_counts(out: Path) -> SplitCounts:
    """Files in each part of a prepared split."""
    return SplitCounts(*(len(list((out / f).iterdir())) for f in (TRAIN_DIR, TEST_NORMAL_DIR, TEST_ABNORMAL_DIR)))


def oct_tree(raw: Path) -> Path:
    """Kermany's OCT2017 layout, nested in a folder whose name has a trailing space (as in the public zip).

    Train 5 NORMAL (+ 6 disease images the split ignores); test 2 NORMAL and 6 disease images; val 1 + 3.
    """
    base = raw / "OCT2017 "
    layout = {
        "train": {"NORMAL": 5, "CNV": 3, "DME": 2, "DRUSEN": 1},
        "test": {"NORMAL": 2, "CNV": 2, "DME": 1, "DRUSEN": 3},
        "val": {"NORMAL": 1, "CNV": 1, "DME": 1, "DRUSEN": 1},
    }
    for part, classes in layout.items():
        for cls, n in classes.items():
            for i in range(n):
                stub(base / part / cls / f"{cls}-{part}{i}-1.jpeg")
    stub(base / "train" / "NORMAL" / ".DS_Store")
    return raw
