"""OCT2017 (Kermany et al., retinal OCT): the EA2D paper's one-class split.

Train = ``train/NORMAL``; test = all of ``test/`` (NORMAL normal; CNV, DME, DRUSEN abnormal), i.e.
26315 train / 250 normal test / 750 abnormal test images. Train on the result with
``configs/oct2017.yaml`` (EA2D recipe) or ``configs/data/oct2017.yaml`` (any anomalib model).

Example:
    >>> from anomalib_ea2d.data.prepare.oct2017 import PAPER_COUNTS
    >>> PAPER_COUNTS.total
    27315
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from anomalib_ea2d.data.prepare import splits
from anomalib_ea2d.data.prepare.splits import LinkMode, PreparedSplit, SplitCounts, SplitItem

PAPER_COUNTS = SplitCounts(train_normal=26315, test_normal=250, test_abnormal=750)
"""The paper's split sizes, checked unless ``expected_counts=None``."""

CLASSES = {"NORMAL": "normal", "CNV": "abnormal", "DME": "abnormal", "DRUSEN": "abnormal"}
"""Source class -> label of the test images."""


def prepare_oct2017(
    raw: str | Path,
    out: str | Path,
    *,
    expected_counts: SplitCounts | Literal["paper"] | None = "paper",
    include_val: bool = False,
    link: LinkMode = "copy",
    overwrite: bool = False,
) -> PreparedSplit:
    """OCT2017: train = ``train/NORMAL``; test = ``test/`` (NORMAL normal; CNV, DME, DRUSEN abnormal).

    Args:
        raw: The download: a folder with ``train/`` and ``test/`` (class sub-folders ``NORMAL``,
            ``CNV``, ``DME``, ``DRUSEN``), or a folder up to two levels above it.
        out: Output folder.
        expected_counts: Counts to check (``"paper"``: the paper's 26315 / 250 / 750); ``None`` skips the check.
        include_val: Add ``val/`` to the test set. Some re-uploads moved 8 test images per class into
            ``val/`` (242 left per class); this restores the original 250 per class.
        link: ``copy`` (default), ``hardlink`` or ``symlink`` the images.
        overwrite: Replace a previous preparation in ``out``.

    Returns:
        The prepared split.

    Example:
        >>> from anomalib_ea2d.data import prepare_oct2017
        >>> split = prepare_oct2017("raw/OCT2017", "datasets/OCT2017")  # doctest: +SKIP
    """
    root = splits.find_root(Path(raw), ["train", "test"], "OCT2017")
    items: list[SplitItem] = []
    train_normal = splits.child_dir(splits.child_dir(root, "train"), "NORMAL")
    if train_normal is None:
        msg = f"OCT2017: no train/NORMAL folder in {root}; check the --raw path."
        raise FileNotFoundError(msg)
    items += [SplitItem(p, "train", "normal", "NORMAL", p.name) for p in splits.list_images(train_normal)]
    test_parts = ["test", "val"] if include_val else ["test"]
    for part in test_parts:
        part_dir = splits.child_dir(root, part)
        if part_dir is None:
            msg = f"OCT2017: no {part}/ folder in {root}; check the --raw path (or drop include_val)."
            raise FileNotFoundError(msg)
        for class_name, label in CLASSES.items():
            class_dir = splits.child_dir(part_dir, class_name)
            if class_dir is None:
                msg = f"OCT2017: no {part}/{class_name} folder in {root}; the download looks incomplete."
                raise FileNotFoundError(msg)
            items += [SplitItem(p, "test", label, class_name, p.name) for p in splits.list_images(class_dir)]
    expected = splits.resolve_expected(expected_counts, PAPER_COUNTS)
    options = {"raw": str(root), "include_val": include_val, "link": link}
    return splits.save_split("oct2017", "OCT2017", items, out, expected, overwrite, options, splits.FilePlacer(link))
