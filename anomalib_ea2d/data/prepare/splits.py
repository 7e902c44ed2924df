"""Shared machinery of the paper datasets' one-class splits: layout, counts, checks and writing.

Each dataset module (:mod:`~anomalib_ea2d.data.prepare.oct2017`, :mod:`~anomalib_ea2d.data.prepare.aptos2019`,
:mod:`~anomalib_ea2d.data.prepare.isic2018`, :mod:`~anomalib_ea2d.data.prepare.br35h`) lists its raw images as
:class:`SplitItem` objects; this module checks the counts against the paper's, protects the output
folder and writes the split in anomalib ``Folder`` layout, which ``configs/data/*.yaml`` read::

    OUT/train/good/        normal training images
    OUT/test/good/         normal test images
    OUT/test/abnormal/     abnormal test images (every disease class)
    OUT/split.csv          one row per image: path, split, label, source class, raw path
    OUT/manifest.json      dataset, counts, options

The counts are checked against the paper's before anything is written; a mismatch raises an error.
Pass ``expected_counts=None`` (CLI: ``--no-count-check``) to prepare a custom subset, or a
:class:`SplitCounts` of your own.

Example:
    >>> SplitCounts(train_normal=1000, test_normal=500, test_abnormal=1500).total
    3000
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from anomalib_ea2d.data.layout import MANIFEST_NAME, TEST_ABNORMAL_DIR, TEST_NORMAL_DIR, TRAIN_DIR

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
_OUTPUTS = ("train", "test", "split.csv", MANIFEST_NAME)

LinkMode = Literal["copy", "hardlink", "symlink"]


@dataclass(frozen=True)
class SplitCounts:
    """Number of images in each part of a one-class split.

    Example:
        >>> SplitCounts(10, 5, 7).total
        22
    """

    train_normal: int
    test_normal: int
    test_abnormal: int

    @property
    def total(self) -> int:
        """All images of the split."""
        return self.train_normal + self.test_normal + self.test_abnormal


@dataclass(frozen=True)
class SplitItem:
    """One raw image and its place in the split.

    Attributes:
        source: The raw file.
        split: ``train`` or ``test``.
        label: ``normal`` or ``abnormal``.
        source_class: The dataset's own class name (e.g. ``CNV``, ``diagnosis_2``).
        name: File name in the output folder.

    Example:
        >>> SplitItem(Path("raw/yes/y1.jpg"), "test", "abnormal", "yes", "y1.jpg").folder
        'test/abnormal'
    """

    source: Path
    split: Literal["train", "test"]
    label: Literal["normal", "abnormal"]
    source_class: str
    name: str

    @property
    def folder(self) -> str:
        """Output sub-folder of the item (``train/good``, ``test/good`` or ``test/abnormal``)."""
        if self.split == "train":
            return TRAIN_DIR
        return TEST_NORMAL_DIR if self.label == "normal" else TEST_ABNORMAL_DIR


@dataclass
class PreparedSplit:
    """Result of a preparation: where it is, what it holds.

    Attributes:
        dataset: Dataset key (``oct2017``, ``aptos2019``, ``isic2018``, ``br35h``).
        root: Output folder, usable as ``data.init_args.root`` of the matching config.
        counts: Images per part of the split.
        class_counts: Images per source class in the test set.

    Example:
        >>> PreparedSplit("br35h", Path("datasets/Br35H"), SplitCounts(1000, 500, 1500)).counts.total
        3000
    """

    dataset: str
    root: Path
    counts: SplitCounts
    class_counts: dict[str, int] = field(default_factory=dict)


def is_image(path: Path) -> bool:
    """Whether ``path`` is a visible image file with a known extension."""
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: Path) -> list[Path]:
    """The images directly inside ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if is_image(p))


def child_dir(parent: Path | None, name: str) -> Path | None:
    """Sub-folder of ``parent`` called ``name``, ignoring case and surrounding spaces; ``None`` if absent."""
    if parent is None or not parent.is_dir():
        return None
    matches = [p for p in parent.iterdir() if p.is_dir() and p.name.strip().lower() == name.lower()]
    return matches[0] if matches else None


def find_root(raw: Path, required: Sequence[str], dataset: str) -> Path:
    """``raw`` or the first folder up to two levels below it that holds every ``required`` entry.

    Raises:
        FileNotFoundError: ``raw`` does not exist or no such folder is found.
    """
    if not raw.is_dir():
        msg = f"{dataset}: raw folder {raw} does not exist; pass the folder of the download with --raw."
        raise FileNotFoundError(msg)

    def holds(folder: Path) -> bool:
        names = {p.name.strip().lower() for p in folder.iterdir()}
        return all(r.lower() in names for r in required)

    candidates = [raw, *sorted(p for p in raw.iterdir() if p.is_dir() and p.name != "__MACOSX")]
    candidates += sorted(q for p in candidates[1:] for q in p.iterdir() if q.is_dir() and q.name != "__MACOSX")
    for folder in candidates:
        if holds(folder):
            return folder
    msg = f"{dataset}: found no folder holding {', '.join(required)} in or below {raw}; check the --raw path."
    raise FileNotFoundError(msg)


def read_csv_rows(path: Path, columns: Sequence[str], dataset: str) -> list[dict[str, str]]:
    """Rows of a CSV file as stripped strings, after checking that it has ``columns``."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = [c.strip() for c in reader.fieldnames or []]
        absent = [c for c in columns if c not in header]
        if absent:
            msg = f"{dataset}: {path} lacks the columns {absent} (has {header}); use the dataset's original CSV."
            raise ValueError(msg)
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def resolve_expected(expected_counts: SplitCounts | Literal["paper"] | None, paper: SplitCounts) -> SplitCounts | None:
    """The counts to check: ``paper`` for ``"paper"``, else ``expected_counts`` as given."""
    if isinstance(expected_counts, str):
        if expected_counts != "paper":
            msg = f"expected_counts must be 'paper', None or a SplitCounts, got {expected_counts!r}."
            raise ValueError(msg)
        return paper
    return expected_counts


def check_counts(dataset: str, items: Sequence[SplitItem], expected: SplitCounts | None) -> SplitCounts:
    """Counts of ``items``; an error if they differ from ``expected`` or leave a part empty."""
    counts = SplitCounts(
        train_normal=sum(i.split == "train" for i in items),
        test_normal=sum(i.split == "test" and i.label == "normal" for i in items),
        test_abnormal=sum(i.split == "test" and i.label == "abnormal" for i in items),
    )
    if expected is not None and counts != expected:
        msg = (
            f"{dataset}: the split has {counts.train_normal} train / {counts.test_normal} normal test / "
            f"{counts.test_abnormal} abnormal test images, but the paper's split has {expected.train_normal} / "
            f"{expected.test_normal} / {expected.test_abnormal}; check that the raw download is complete, or pass "
            "expected_counts=None (CLI: --no-count-check) to prepare a custom subset."
        )
        raise ValueError(msg)
    if 0 in {counts.train_normal, counts.test_normal + counts.test_abnormal}:
        msg = f"{dataset}: the split would be empty ({counts}); check the --raw path and its layout."
        raise ValueError(msg)
    return counts


def check_unique_names(dataset: str, items: Iterable[SplitItem]) -> None:
    """An error if two items would be written to the same output file."""
    seen: dict[tuple[str, str], Path] = {}
    for item in items:
        key = (item.folder, item.name.lower())
        if key in seen:
            msg = (
                f"{dataset}: two raw images would both be written as {item.folder}/{item.name} "
                f"({seen[key]} and {item.source}); rename one of them in the raw folder."
            )
            raise ValueError(msg)
        seen[key] = item.source


def prepare_output(out: Path, overwrite: bool, dataset: str) -> None:
    """Create the output folders; an earlier preparation is removed only with ``overwrite``."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            msg = (
                f"{dataset}: output folder {out} is not empty; choose a new folder or pass overwrite=True "
                "(CLI: --overwrite)."
            )
            raise FileExistsError(msg)
        for name in _OUTPUTS:  # remove only what a preparation writes
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    for folder in (TRAIN_DIR, TEST_NORMAL_DIR, TEST_ABNORMAL_DIR):
        (out / folder).mkdir(parents=True, exist_ok=True)


class FilePlacer:
    """Picklable ``write_one`` of :func:`save_split` that copies or links the raw file unchanged.

    Args:
        link: ``copy``, ``hardlink`` or ``symlink``.

    Example:
        >>> FilePlacer("symlink").link
        'symlink'
    """

    def __init__(self, link: LinkMode) -> None:
        self.link = link

    def __call__(self, item: SplitItem, target: Path) -> None:
        """Place ``item``'s raw file at ``target``."""
        if self.link == "copy":
            shutil.copy2(item.source, target)
        elif self.link == "hardlink":
            os.link(item.source, target)
        elif self.link == "symlink":
            target.symlink_to(item.source.resolve())
        else:
            msg = f"Unknown link mode {self.link!r}; use 'copy', 'hardlink' or 'symlink'."
            raise ValueError(msg)


def _write(
    dataset: str,
    items: Sequence[SplitItem],
    out: Path,
    counts: SplitCounts,
    options: dict[str, Any],
    write_one: Callable[[SplitItem, Path], None],
    workers: int,
) -> PreparedSplit:
    """Write every item with ``write_one``, then ``split.csv`` and ``manifest.json``; see :func:`save_split`."""
    targets = [out / item.folder / item.name for item in items]
    if workers > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(write_one, items, targets, chunksize=16))
    else:
        for item, target in zip(items, targets, strict=True):
            write_one(item, target)

    with (out / "split.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split", "label", "source_class", "source"])
        for item in items:
            writer.writerow([f"{item.folder}/{item.name}", item.split, item.label, item.source_class, str(item.source)])

    written = SplitCounts(*(len(list((out / f).iterdir())) for f in (TRAIN_DIR, TEST_NORMAL_DIR, TEST_ABNORMAL_DIR)))
    if written != counts:
        msg = f"{dataset}: wrote {written} into {out} but planned {counts}; something else changed the output folder."
        raise RuntimeError(msg)
    class_counts: dict[str, int] = {}
    for item in items:
        if item.split == "test":
            class_counts[item.source_class] = class_counts.get(item.source_class, 0) + 1
    manifest = {
        "dataset": dataset,
        "counts": asdict(counts),
        "test_class_counts": class_counts,
        "options": options,
        "layout": {"normal_dir": TRAIN_DIR, "normal_test_dir": TEST_NORMAL_DIR, "abnormal_dir": TEST_ABNORMAL_DIR},
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, default=str))
    logger.info("%s: prepared %s in %s.", dataset, counts, out)
    return PreparedSplit(dataset=dataset, root=out, counts=counts, class_counts=class_counts)


def save_split(
    dataset: str,
    name: str,
    items: Sequence[SplitItem],
    out: str | Path,
    expected: SplitCounts | None,
    overwrite: bool,
    options: dict[str, Any],
    write_one: Callable[[SplitItem, Path], None],
    workers: int = 1,
) -> PreparedSplit:
    """Check a planned split (counts, unique output names), then write it into a fresh ``out``.

    Args:
        dataset: Dataset key (``oct2017``, ...), recorded in the manifest.
        name: Dataset name used in messages (``OCT2017``, ...).
        items: The planned split.
        out: Output folder.
        expected: Counts the split must have (from :func:`resolve_expected`); ``None`` skips the check.
        overwrite: Replace a previous preparation in ``out``.
        options: Preparation options, recorded in the manifest.
        write_one: Writes one item to its target path (picklable when ``workers > 1``).
        workers: Processes that run ``write_one``.

    Returns:
        The prepared split.
    """
    counts = check_counts(name, items, expected)
    check_unique_names(name, items)
    out = Path(out)
    prepare_output(out, overwrite, name)
    return _write(dataset, items, out, counts, options, write_one, workers)
