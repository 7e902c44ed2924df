"""APTOS 2019 (colour fundus photos): the EA2D paper's one-class split. Normal = diagnosis 0.

Every fundus is cropped to the square around its largest connected foreground region (5 px margin,
:func:`~anomalib_ea2d.data.prepare.fundus.crop_fundus`) and resized to 512 x 512; train = 1000 images with
diagnosis 0 drawn with seed 1; test = all the others, i.e. 1000 train / 805 normal test / 1857
abnormal test images. Train on the result with ``configs/aptos2019.yaml`` (EA2D recipe) or
``configs/data/aptos2019.yaml`` (any anomalib model).

Example:
    >>> from anomalib_ea2d.data.prepare.aptos2019 import PAPER_COUNTS
    >>> PAPER_COUNTS
    SplitCounts(train_normal=1000, test_normal=805, test_abnormal=1857)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from anomalib_ea2d.data.prepare import splits
from anomalib_ea2d.data.prepare.fundus import crop_fundus
from anomalib_ea2d.data.prepare.splits import PreparedSplit, SplitCounts, SplitItem

PAPER_COUNTS = SplitCounts(train_normal=1000, test_normal=805, test_abnormal=1857)
"""The paper's split sizes, checked unless ``expected_counts=None``."""


class FundusWriter:
    """Picklable ``write_one`` that crops, resizes and saves one fundus photo as PNG.

    Args:
        size: Output side in pixels.
        margin: Margin of the crop in original pixels.
        threshold: Grey level separating the fundus from the black background.

    Example:
        >>> FundusWriter(size=512, margin=5, threshold=10).size
        512
    """

    def __init__(self, size: int, margin: int, threshold: int) -> None:
        self.size, self.margin, self.threshold = size, margin, threshold

    def __call__(self, item: SplitItem, target: Path) -> None:
        """Crop ``item``'s photo and save it at ``target``."""
        with Image.open(item.source) as image:
            crop_fundus(image, self.size, self.margin, self.threshold).save(target)


def prepare_aptos2019(
    raw: str | Path,
    out: str | Path,
    *,
    expected_counts: SplitCounts | Literal["paper"] | None = "paper",
    num_train: int = 1000,
    seed: int = 1,
    train_ids: Sequence[str] | None = None,
    size: int = 512,
    margin: int = 5,
    threshold: int = 10,
    workers: int | None = None,
    overwrite: bool = False,
) -> PreparedSplit:
    """APTOS 2019: crop + resize every fundus; 1000 random diagnosis-0 images train, the rest test.

    The training images are ``numpy.random.default_rng(seed).choice`` of the diagnosis-0 ids sorted
    alphabetically (``num_train`` of them, without replacement). That reproduces this package's split
    exactly, not necessarily the paper's draw; pass the paper's list as ``train_ids`` if you have it.

    Args:
        raw: Folder with ``train.csv`` (``id_code``, ``diagnosis``) and ``train_images/<id_code>.png``.
        out: Output folder.
        expected_counts: Counts to check (``"paper"``: the paper's 1000 / 805 / 1857); ``None`` skips the check.
        num_train: Number of diagnosis-0 training images.
        seed: Seed of the training-image draw.
        train_ids: Explicit training ids (all with diagnosis 0) instead of the random draw.
        size: Output side in pixels.
        margin: Margin of the crop in original pixels.
        threshold: Grey level separating the fundus from the black background.
        workers: Processes for cropping (default: all CPU cores, at most 8).
        overwrite: Replace a previous preparation in ``out``.

    Returns:
        The prepared split.
    """
    root = splits.find_root(Path(raw), ["train.csv", "train_images"], "APTOS2019")
    image_dir = splits.child_dir(root, "train_images")
    assert image_dir is not None  # find_root checked it
    rows = splits.read_csv_rows(root / "train.csv", ["id_code", "diagnosis"], "APTOS2019")
    by_id: dict[str, Path] = {}
    for path in splits.list_images(image_dir):
        by_id.setdefault(path.stem, path)
    missing = [row["id_code"] for row in rows if row["id_code"] not in by_id]
    if missing:
        msg = (
            f"APTOS2019: {len(missing)} ids of train.csv have no image in {image_dir} (e.g. {missing[:3]}); "
            "the download is incomplete."
        )
        raise FileNotFoundError(msg)
    try:
        grades = {row["id_code"]: int(float(row["diagnosis"])) for row in rows}
    except ValueError as error:
        msg = f"APTOS2019: train.csv has a non-numeric diagnosis ({error}); use the competition's original train.csv."
        raise ValueError(msg) from error
    chosen = _training_ids(grades, num_train, seed, train_ids)
    items = [
        SplitItem(
            by_id[i],
            "train" if i in chosen else "test",
            "normal" if g == 0 else "abnormal",
            f"diagnosis_{g}",
            f"{i}.png",
        )
        for i, g in sorted(grades.items())
    ]
    options = {"raw": str(root), "num_train": num_train, "seed": seed, "explicit_train_ids": train_ids is not None,
               "size": size, "margin": margin, "threshold": threshold}  # fmt: skip
    expected = splits.resolve_expected(expected_counts, PAPER_COUNTS)
    writer = FundusWriter(size, margin, threshold)
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    return splits.save_split("aptos2019", "APTOS2019", items, out, expected, overwrite, options, writer, workers)


def _training_ids(grades: dict[str, int], num_train: int, seed: int, train_ids: Sequence[str] | None) -> set[str]:
    """``train_ids`` after checking they are all diagnosis 0, else ``num_train`` seeded draws of them."""
    normal_ids = sorted(i for i, g in grades.items() if g == 0)
    if train_ids is not None:
        chosen = {str(i) for i in train_ids}
        wrong = sorted(i for i in chosen if grades.get(i) != 0)
        if wrong:
            msg = f"APTOS2019: train_ids must all have diagnosis 0 in train.csv; these do not: {wrong[:5]}."
            raise ValueError(msg)
        return chosen
    if num_train > len(normal_ids):
        msg = (
            f"APTOS2019: asked for {num_train} training images but train.csv has only {len(normal_ids)} "
            "with diagnosis 0; lower num_train."
        )
        raise ValueError(msg)
    picks = np.random.default_rng(seed).choice(len(normal_ids), size=num_train, replace=False)
    return {normal_ids[i] for i in picks}
