"""Br35H (brain MRI, tumour vs no tumour): the EA2D paper's one-class split. Normal = ``no``.

Train = ``no`` images numbered below 1000; test = ``no`` numbered 1000 and above plus all ``yes``
images, i.e. 1000 train / 500 normal test / 1500 abnormal test images. Train on the result with
``configs/br35h.yaml`` (EA2D recipe) or ``configs/data/br35h.yaml`` (any anomalib model).

Example:
    >>> from anomalib_ea2d.data.prepare.br35h import PAPER_COUNTS
    >>> PAPER_COUNTS.test_normal + PAPER_COUNTS.test_abnormal
    2000
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from anomalib_ea2d.data.prepare import splits
from anomalib_ea2d.data.prepare.splits import LinkMode, PreparedSplit, SplitCounts, SplitItem

PAPER_COUNTS = SplitCounts(train_normal=1000, test_normal=500, test_abnormal=1500)
"""The paper's split sizes, checked unless ``expected_counts=None``."""

_NUMBER = re.compile(r"(\d+)")


def _class_from_name(path: Path) -> str | None:
    """``no``/``yes`` from the file name's prefix, else ``None``."""
    stem = path.stem.strip().lower()
    if stem.startswith("no"):
        return "no"
    if stem.startswith("y"):
        return "yes"
    return None


def _labelled_images(raw: Path) -> tuple[Path, list[tuple[Path, str]]]:
    """The folder holding the images and its ``(image, class)`` pairs, from ``no/``/``yes/`` or file names."""
    try:
        root = splits.find_root(raw, ["no", "yes"], "Br35H")
    except FileNotFoundError:
        if not raw.is_dir():
            raise
    else:
        folders = {c: splits.child_dir(root, c) for c in ("no", "yes")}
        return root, [(p, c) for c, folder in folders.items() if folder is not None for p in splits.list_images(folder)]
    named = [(p, _class_from_name(p)) for p in splits.list_images(raw)]
    unknown = [p.name for p, c in named if c is None]
    if unknown:
        msg = (
            f"Br35H: cannot tell the class of {len(unknown)} files in {raw} (e.g. {unknown[:3]}); "
            "put them in no/ and yes/ folders or name them no<N>.jpg / y<N>.jpg."
        )
        raise ValueError(msg)
    if not named:
        msg = f"Br35H: {raw} holds neither no/ and yes/ folders nor no*/y* images; check the --raw path."
        raise FileNotFoundError(msg)
    return raw, [(p, c) for p, c in named if c is not None]


def prepare_br35h(
    raw: str | Path,
    out: str | Path,
    *,
    expected_counts: SplitCounts | Literal["paper"] | None = "paper",
    train_below: int = 1000,
    link: LinkMode = "copy",
    overwrite: bool = False,
) -> PreparedSplit:
    """Br35H: train = ``no`` images numbered below 1000; test = the other ``no`` images and all ``yes``.

    Naming assumptions (checked, with an error when they fail): the class is the folder (``no/`` or
    ``yes/``, any case) or, for images outside such folders, the file-name prefix (``no...`` normal,
    ``y...``/``yes...`` abnormal); the number of a ``no`` image is the last run of digits in its name
    (``no0.jpg`` -> 0, ``no1000.jpg`` -> 1000, ``No (12).png`` -> 12). Every ``no`` image must carry a
    number, and no number may occur twice. Other folders of the download (e.g. the unlabelled
    ``pred/``) are ignored.

    Args:
        raw: The download: a folder with ``no/`` and ``yes/`` (up to two levels down), or a flat
            folder of ``no*.jpg`` / ``y*.jpg`` files.
        out: Output folder.
        expected_counts: Counts to check (``"paper"``: the paper's 1000 / 500 / 1500); ``None`` skips the check.
        train_below: ``no`` images with a number below this train the model.
        link: ``copy`` (default), ``hardlink`` or ``symlink`` the images.
        overwrite: Replace a previous preparation in ``out``.

    Returns:
        The prepared split.
    """
    root, sources = _labelled_images(Path(raw))
    items: list[SplitItem] = []
    numbers: dict[int, Path] = {}
    for path, cls in sources:
        if cls == "yes":
            items.append(SplitItem(path, "test", "abnormal", "yes", path.name))
            continue
        digits = _NUMBER.findall(path.stem)
        if not digits:
            msg = f"Br35H: normal image {path} has no number in its name; the split needs names like no123.jpg."
            raise ValueError(msg)
        number = int(digits[-1])
        if number in numbers:
            msg = f"Br35H: normal images {numbers[number].name} and {path.name} share the number {number}; remove one."
            raise ValueError(msg)
        numbers[number] = path
        items.append(SplitItem(path, "train" if number < train_below else "test", "normal", "no", path.name))
    expected = splits.resolve_expected(expected_counts, PAPER_COUNTS)
    options = {"raw": str(root), "train_below": train_below, "link": link}
    return splits.save_split("br35h", "Br35H", items, out, expected, overwrite, options, splits.FilePlacer(link))
