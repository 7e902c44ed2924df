"""ISIC2018 task 3 (dermoscopy): the EA2D paper's one-class split. Normal = nevus (NV).

Train = the NV images of the training set; test = the validation set, NV normal, every other class
abnormal, i.e. 6705 train / 123 normal test / 70 abnormal test images. The images are left
unchanged: resize 256 + centre-crop 224 is the pre-processor of ``configs/isic2018.yaml``. Train on
the result with ``configs/isic2018.yaml`` (EA2D recipe) or ``configs/data/isic2018.yaml`` (any
anomalib model).

Example:
    >>> from anomalib_ea2d.data.prepare.isic2018 import CLASSES, PAPER_COUNTS
    >>> PAPER_COUNTS.train_normal, CLASSES[1]
    (6705, 'NV')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from anomalib_ea2d.data.prepare import splits
from anomalib_ea2d.data.prepare.splits import LinkMode, PreparedSplit, SplitCounts, SplitItem

PAPER_COUNTS = SplitCounts(train_normal=6705, test_normal=123, test_abnormal=70)
"""The paper's split sizes, checked unless ``expected_counts=None``."""

CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
"""One-hot columns of the ground-truth CSV files."""


def _labelled_images(root: Path, part: str) -> list[tuple[Path, str]]:
    """``(image, class)`` pairs of ``Training`` or ``Validation`` from the one-hot ground-truth CSV."""
    input_dir = splits.child_dir(root, f"ISIC2018_Task3_{part}_Input")
    truth_dir = splits.child_dir(root, f"ISIC2018_Task3_{part}_GroundTruth")
    if input_dir is None or truth_dir is None:
        msg = f"ISIC2018: {root} lacks ISIC2018_Task3_{part}_Input/ or ISIC2018_Task3_{part}_GroundTruth/; check --raw."
        raise FileNotFoundError(msg)
    csv_path = truth_dir / f"ISIC2018_Task3_{part}_GroundTruth.csv"
    if not csv_path.is_file():
        msg = f"ISIC2018: {csv_path} is missing; unpack the {part} ground truth into {truth_dir}."
        raise FileNotFoundError(msg)
    rows = splits.read_csv_rows(csv_path, ["image", *CLASSES], "ISIC2018")
    images = {p.stem: p for p in splits.list_images(input_dir)}
    pairs = []
    for row in rows:
        hot = [c for c in CLASSES if float(row[c]) >= 0.5]
        if len(hot) != 1:
            msg = f"ISIC2018: image {row['image']} in {csv_path.name} has {len(hot)} positive classes, not exactly one."
            raise ValueError(msg)
        if row["image"] not in images:
            msg = (
                f"ISIC2018: {row['image']} is listed in {csv_path.name} but missing from {input_dir}; "
                "the download is incomplete."
            )
            raise FileNotFoundError(msg)
        pairs.append((images[row["image"]], hot[0]))
    return pairs


def prepare_isic2018(
    raw: str | Path,
    out: str | Path,
    *,
    expected_counts: SplitCounts | Literal["paper"] | None = "paper",
    link: LinkMode = "copy",
    overwrite: bool = False,
) -> PreparedSplit:
    """ISIC2018 task 3: train = NV of the training set; test = validation set (NV normal, others abnormal).

    Args:
        raw: Folder with ``ISIC2018_Task3_{Training,Validation}_Input/`` and
            ``ISIC2018_Task3_{Training,Validation}_GroundTruth/<same name>.csv`` (one-hot columns
            ``MEL, NV, BCC, AKIEC, BKL, DF, VASC``).
        out: Output folder.
        expected_counts: Counts to check (``"paper"``: the paper's 6705 / 123 / 70); ``None`` skips the check.
        link: ``copy`` (default), ``hardlink`` or ``symlink`` the images.
        overwrite: Replace a previous preparation in ``out``.

    Returns:
        The prepared split (images unchanged; resize 256 + centre-crop 224 live in ``configs/isic2018.yaml``).
    """
    root = splits.find_root(Path(raw), ["ISIC2018_Task3_Training_Input", "ISIC2018_Task3_Validation_Input"], "ISIC2018")
    items = [SplitItem(p, "train", "normal", c, p.name) for p, c in _labelled_images(root, "Training") if c == "NV"]
    items += [
        SplitItem(p, "test", "normal" if c == "NV" else "abnormal", c, p.name)
        for p, c in _labelled_images(root, "Validation")
    ]
    expected = splits.resolve_expected(expected_counts, PAPER_COUNTS)
    options = {"raw": str(root), "link": link}
    return splits.save_split("isic2018", "ISIC2018", items, out, expected, overwrite, options, splits.FilePlacer(link))
