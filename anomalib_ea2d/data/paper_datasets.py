"""Reference splits of the EA2D paper's datasets (OCT2017, APTOS 2019, ISIC2018 task 3, Br35H).

Each ``prepare_*`` function reads a raw download, builds the paper's one-class split and writes it
in anomalib ``Folder`` layout, which the configs in ``configs/`` read::

    OUT/train/good/        normal training images
    OUT/test/good/         normal test images
    OUT/test/abnormal/     abnormal test images (every disease class)
    OUT/split.csv          one row per image: path, split, label, source class, raw path
    OUT/manifest.json      dataset, counts, options

Splits (counts are train normal / test normal / test abnormal):

* OCT2017 (Kermany et al.): train = ``train/NORMAL``; test = all of ``test/`` (NORMAL normal; CNV, DME,
  DRUSEN abnormal). 26315 / 250 / 750.
* APTOS 2019: every fundus is cropped to the square around its largest connected foreground region
  (5 px margin) and resized to 512 x 512; train = 1000 images with diagnosis 0 drawn with seed 1;
  test = all the others. 1000 / 805 / 1857.
* ISIC2018 task 3: train = the NV images of the training set; test = the validation set, NV normal,
  every other class abnormal. 6705 / 123 / 70. (Resize 256 + centre-crop 224 is done by the config's
  pre-processor, not here.)
* Br35H: train = ``no`` images numbered below 1000; test = ``no`` numbered 1000 and above plus all
  ``yes`` images. 1000 / 500 / 1500.

The counts are checked against the paper's before anything is written; a mismatch raises an error.
Pass ``expected_counts=None`` (CLI: ``--no-count-check``) to prepare a custom subset, or a
:class:`SplitCounts` of your own.

Example:
    >>> from anomalib_ea2d.data.paper_datasets import PAPER_DATASETS
    >>> PAPER_DATASETS["aptos2019"]
    SplitCounts(train_normal=1000, test_normal=805, test_abnormal=1857)
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from scipy import ndimage

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
TRAIN_DIR = "train/good"
TEST_NORMAL_DIR = "test/good"
TEST_ABNORMAL_DIR = "test/abnormal"
_OUTPUTS = ("train", "test", "split.csv", "manifest.json")

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


PAPER_DATASETS: dict[str, SplitCounts] = {
    "oct2017": SplitCounts(train_normal=26315, test_normal=250, test_abnormal=750),
    "aptos2019": SplitCounts(train_normal=1000, test_normal=805, test_abnormal=1857),
    "isic2018": SplitCounts(train_normal=6705, test_normal=123, test_abnormal=70),
    "br35h": SplitCounts(train_normal=1000, test_normal=500, test_abnormal=1500),
}
"""The paper's split sizes, checked after preparation unless ``expected_counts=None``."""


@dataclass(frozen=True)
class _Item:
    source: Path
    split: Literal["train", "test"]
    label: Literal["normal", "abnormal"]
    source_class: str
    name: str  # file name in the output folder

    @property
    def folder(self) -> str:
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
    """

    dataset: str
    root: Path
    counts: SplitCounts
    class_counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Helpers


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _is_image(p))


def _child(parent: Path, name: str) -> Path | None:
    """Sub-folder of ``parent`` called ``name``, ignoring case; ``None`` if absent."""
    if not parent.is_dir():
        return None
    matches = [p for p in parent.iterdir() if p.is_dir() and p.name.strip().lower() == name.lower()]
    return matches[0] if matches else None


def _find_root(raw: Path, required: Sequence[str], dataset: str) -> Path:
    """``raw`` or the first folder up to two levels below it that holds every ``required`` entry."""
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


def _check_counts(dataset: str, items: Sequence[_Item], expected: SplitCounts | None) -> SplitCounts:
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


def _prepare_output(out: Path, overwrite: bool, dataset: str) -> None:
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


def _place(source: Path, target: Path, link: LinkMode) -> None:
    if link == "copy":
        shutil.copy2(source, target)
    elif link == "hardlink":
        os.link(source, target)
    elif link == "symlink":
        target.symlink_to(source.resolve())
    else:
        msg = f"Unknown link mode {link!r}; use 'copy', 'hardlink' or 'symlink'."
        raise ValueError(msg)


def _check_unique_names(dataset: str, items: Iterable[_Item]) -> None:
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


def _write(
    dataset: str,
    items: Sequence[_Item],
    out: Path,
    counts: SplitCounts,
    options: dict[str, Any],
    write_one: Callable[[_Item, Path], None],
    workers: int,
) -> PreparedSplit:
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
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    logger.info("%s: prepared %s in %s.", dataset, counts, out)
    return PreparedSplit(dataset=dataset, root=out, counts=counts, class_counts=class_counts)


def _resolve_expected(dataset: str, expected_counts: SplitCounts | Literal["paper"] | None) -> SplitCounts | None:
    if isinstance(expected_counts, str):
        if expected_counts != "paper":
            msg = f"expected_counts must be 'paper', None or a SplitCounts, got {expected_counts!r}."
            raise ValueError(msg)
        return PAPER_DATASETS[dataset]
    return expected_counts


class _Placer:
    """Picklable ``write_one`` that copies or links the raw file."""

    def __init__(self, link: LinkMode) -> None:
        self.link = link

    def __call__(self, item: _Item, target: Path) -> None:
        _place(item.source, target, self.link)


# --------------------------------------------------------------------------------------------------
# OCT2017


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
    root = _find_root(Path(raw), ["train", "test"], "OCT2017")
    classes = {"NORMAL": "normal", "CNV": "abnormal", "DME": "abnormal", "DRUSEN": "abnormal"}
    items: list[_Item] = []
    train_dir = _child(root, "train")
    train_normal = _child(train_dir, "NORMAL") if train_dir is not None else None
    if train_normal is None:
        msg = f"OCT2017: no train/NORMAL folder in {root}; check the --raw path."
        raise FileNotFoundError(msg)
    items += [_Item(p, "train", "normal", "NORMAL", p.name) for p in _images(train_normal)]
    test_parts = ["test", "val"] if include_val else ["test"]
    for part in test_parts:
        part_dir = _child(root, part)
        if part_dir is None:
            msg = f"OCT2017: no {part}/ folder in {root}; check the --raw path (or drop include_val)."
            raise FileNotFoundError(msg)
        for class_name, label in classes.items():
            class_dir = _child(part_dir, class_name)
            if class_dir is None:
                msg = f"OCT2017: no {part}/{class_name} folder in {root}; the download looks incomplete."
                raise FileNotFoundError(msg)
            items += [_Item(p, "test", label, class_name, p.name) for p in _images(class_dir)]
    counts = _check_counts("OCT2017", items, _resolve_expected("oct2017", expected_counts))
    _check_unique_names("OCT2017", items)
    out = Path(out)
    _prepare_output(out, overwrite, "OCT2017")
    options = {"raw": str(root), "include_val": include_val, "link": link}
    return _write("oct2017", items, out, counts, options, _Placer(link), workers=1)


# --------------------------------------------------------------------------------------------------
# APTOS 2019


def crop_fundus(image: Image.Image, size: int = 512, margin: int = 5, threshold: int = 10) -> Image.Image:
    """Crop a fundus photo to the square around its largest bright region and resize it.

    The foreground is every pixel whose grey value exceeds ``threshold``; the square is centred on
    the bounding box of the largest connected foreground region, its side is the box's longer side
    plus ``margin`` pixels on each side, and parts outside the photo are filled with black.

    Args:
        image: The photo.
        size: Output side in pixels.
        margin: Margin around the region in (original) pixels.
        threshold: Grey level (0-255) above which a pixel is foreground.

    Returns:
        The ``size`` x ``size`` RGB crop.

    Example:
        >>> from PIL import Image, ImageDraw
        >>> photo = Image.new("RGB", (300, 200))
        >>> ImageDraw.Draw(photo).ellipse((100, 50, 200, 150), fill=(200, 80, 40))
        >>> crop_fundus(photo, size=64).size
        (64, 64)
    """
    rgb = image.convert("RGB")
    foreground = np.asarray(rgb.convert("L")) > threshold
    labels, count = ndimage.label(foreground)
    if count == 0:
        msg = f"crop_fundus: the image has no pixel brighter than {threshold}; it cannot be a fundus photo."
        raise ValueError(msg)
    largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    rows, cols = ndimage.find_objects((labels == largest).astype(np.int32))[0]
    side = max(rows.stop - rows.start, cols.stop - cols.start) + 2 * margin
    centre_row = (rows.start + rows.stop) / 2
    centre_col = (cols.start + cols.stop) / 2
    top = round(centre_row - side / 2)
    left = round(centre_col - side / 2)
    # PIL pads regions outside the image with black.
    square = rgb.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.Resampling.LANCZOS)


class _FundusWriter:
    """Picklable ``write_one`` that crops, resizes and saves one fundus photo as PNG."""

    def __init__(self, size: int, margin: int, threshold: int) -> None:
        self.size, self.margin, self.threshold = size, margin, threshold

    def __call__(self, item: _Item, target: Path) -> None:
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
    root = _find_root(Path(raw), ["train.csv", "train_images"], "APTOS2019")
    image_dir = _child(root, "train_images")
    assert image_dir is not None  # _find_root checked it
    rows = _read_csv(root / "train.csv", ["id_code", "diagnosis"], "APTOS2019")
    by_id: dict[str, Path] = {}
    for path in _images(image_dir):
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
    normal_ids = sorted(i for i, g in grades.items() if g == 0)
    if train_ids is not None:
        chosen = {str(i) for i in train_ids}
        wrong = sorted(i for i in chosen if grades.get(i) != 0)
        if wrong:
            msg = f"APTOS2019: train_ids must all have diagnosis 0 in train.csv; these do not: {wrong[:5]}."
            raise ValueError(msg)
    else:
        if num_train > len(normal_ids):
            msg = (
                f"APTOS2019: asked for {num_train} training images but train.csv has only {len(normal_ids)} "
                "with diagnosis 0; lower num_train."
            )
            raise ValueError(msg)
        picks = np.random.default_rng(seed).choice(len(normal_ids), size=num_train, replace=False)
        chosen = {normal_ids[i] for i in picks}
    items = [
        _Item(
            by_id[i],
            "train" if i in chosen else "test",
            "normal" if g == 0 else "abnormal",
            f"diagnosis_{g}",
            f"{i}.png",
        )
        for i, g in sorted(grades.items())
    ]
    counts = _check_counts("APTOS2019", items, _resolve_expected("aptos2019", expected_counts))
    out = Path(out)
    _prepare_output(out, overwrite, "APTOS2019")
    options = {"raw": str(root), "num_train": num_train, "seed": seed, "explicit_train_ids": train_ids is not None,
               "size": size, "margin": margin, "threshold": threshold}  # fmt: skip
    workers = min(os.cpu_count() or 1, 8) if workers is None else workers
    return _write("aptos2019", items, out, counts, options, _FundusWriter(size, margin, threshold), workers)


def _read_csv(path: Path, columns: Sequence[str], dataset: str) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = [c.strip() for c in reader.fieldnames or []]
        absent = [c for c in columns if c not in header]
        if absent:
            msg = f"{dataset}: {path} lacks the columns {absent} (has {header}); use the dataset's original CSV."
            raise ValueError(msg)
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


# --------------------------------------------------------------------------------------------------
# ISIC2018 task 3

ISIC_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


def _isic_part(root: Path, part: str) -> list[tuple[Path, str]]:
    """``(image, class)`` pairs of ``Training`` or ``Validation`` from the one-hot ground-truth CSV."""
    input_dir = _child(root, f"ISIC2018_Task3_{part}_Input")
    truth_dir = _child(root, f"ISIC2018_Task3_{part}_GroundTruth")
    if input_dir is None or truth_dir is None:
        msg = f"ISIC2018: {root} lacks ISIC2018_Task3_{part}_Input/ or ISIC2018_Task3_{part}_GroundTruth/; check --raw."
        raise FileNotFoundError(msg)
    csv_path = truth_dir / f"ISIC2018_Task3_{part}_GroundTruth.csv"
    if not csv_path.is_file():
        msg = f"ISIC2018: {csv_path} is missing; unpack the {part} ground truth into {truth_dir}."
        raise FileNotFoundError(msg)
    rows = _read_csv(csv_path, ["image", *ISIC_CLASSES], "ISIC2018")
    images = {p.stem: p for p in _images(input_dir)}
    pairs = []
    for row in rows:
        hot = [c for c in ISIC_CLASSES if float(row[c]) >= 0.5]
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
    root = _find_root(Path(raw), ["ISIC2018_Task3_Training_Input", "ISIC2018_Task3_Validation_Input"], "ISIC2018")
    items = [_Item(p, "train", "normal", c, p.name) for p, c in _isic_part(root, "Training") if c == "NV"]
    items += [
        _Item(p, "test", "normal" if c == "NV" else "abnormal", c, p.name) for p, c in _isic_part(root, "Validation")
    ]
    counts = _check_counts("ISIC2018", items, _resolve_expected("isic2018", expected_counts))
    _check_unique_names("ISIC2018", items)
    out = Path(out)
    _prepare_output(out, overwrite, "ISIC2018")
    return _write("isic2018", items, out, counts, {"raw": str(root), "link": link}, _Placer(link), workers=1)


# --------------------------------------------------------------------------------------------------
# Br35H

_NUMBER = re.compile(r"(\d+)")


def _br35h_class(path: Path, folder_class: str | None) -> str | None:
    """``no``/``yes`` from the folder if it says so, else from the file name's prefix, else ``None``."""
    if folder_class is not None:
        return folder_class
    stem = path.stem.strip().lower()
    if stem.startswith("no"):
        return "no"
    if stem.startswith("y"):
        return "yes"
    return None


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
    raw = Path(raw)
    try:
        root = _find_root(raw, ["no", "yes"], "Br35H")
        sources = [(p, "no") for p in _images(_child(root, "no"))] + [(p, "yes") for p in _images(_child(root, "yes"))]
    except FileNotFoundError:
        if not raw.is_dir():
            raise
        root = raw
        sources = [(p, _br35h_class(p, None)) for p in _images(raw)]
        unknown = [p.name for p, c in sources if c is None]
        if unknown:
            msg = (
                f"Br35H: cannot tell the class of {len(unknown)} files in {raw} (e.g. {unknown[:3]}); "
                "put them in no/ and yes/ folders or name them no<N>.jpg / y<N>.jpg."
            )
            raise ValueError(msg) from None
        if not sources:
            msg = f"Br35H: {raw} holds neither no/ and yes/ folders nor no*/y* images; check the --raw path."
            raise FileNotFoundError(msg) from None
    items: list[_Item] = []
    numbers: dict[int, Path] = {}
    for path, cls in sources:
        if cls == "yes":
            items.append(_Item(path, "test", "abnormal", "yes", path.name))
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
        items.append(_Item(path, "train" if number < train_below else "test", "normal", "no", path.name))
    counts = _check_counts("Br35H", items, _resolve_expected("br35h", expected_counts))
    _check_unique_names("Br35H", items)
    out = Path(out)
    _prepare_output(out, overwrite, "Br35H")
    options = {"raw": str(root), "train_below": train_below, "link": link}
    return _write("br35h", items, out, counts, options, _Placer(link), workers=1)


# --------------------------------------------------------------------------------------------------

PREPARERS: dict[str, Callable[..., PreparedSplit]] = {
    "oct2017": prepare_oct2017,
    "aptos2019": prepare_aptos2019,
    "isic2018": prepare_isic2018,
    "br35h": prepare_br35h,
}


def prepare_dataset(name: str, raw: str | Path, out: str | Path, **kwargs: Any) -> PreparedSplit:  # noqa: ANN401
    """Prepare one of the paper datasets by key (``oct2017``, ``aptos2019``, ``isic2018``, ``br35h``).

    Args:
        name: Dataset key.
        raw: Raw download folder.
        out: Output folder.
        **kwargs: Options of the matching ``prepare_*`` function.

    Returns:
        The prepared split.

    Example:
        >>> from anomalib_ea2d.data import prepare_dataset
        >>> prepare_dataset("br35h", "raw/Br35H", "datasets/Br35H")  # doctest: +SKIP
    """
    key = name.lower()
    if key not in PREPARERS:
        msg = f"Unknown dataset {name!r}; choose one of {sorted(PREPARERS)}."
        raise ValueError(msg)
    return PREPARERS[key](raw, out, **kwargs)
