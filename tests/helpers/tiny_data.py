"""A tiny generated Folder dataset with masks, for fast end-to-end tests.

Normal images are smooth random textures; abnormal images carry a bright square whose mask is
saved under ``ground_truth/bad``. The layout is the one anomalib's ``Folder`` datamodule reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SPLITS = {"train/good": 8, "test/good": 4, "test/bad": 4}


def _write_dataset(
    root: Path,
    splits: dict[str, int],
    size: int,
    seed: int,
    square_corner: tuple[int, int],
    square_side: int,
    disk: np.ndarray | None = None,
) -> Path:
    """Textures (zero outside ``disk`` when given) with a bright square of ``square_side`` px in ``test/bad``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, count in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            phase = rng.uniform(0, 2 * np.pi, 2)
            image = 128 + 40 * np.sin(6 * xx + phase[0]) * np.cos(5 * yy + phase[1]) + rng.normal(0, 4, (size, size))
            if split == "test/bad":
                mask = np.zeros((size, size), np.uint8)
                top, left = rng.integers(*square_corner, 2)
                mask[top : top + square_side, left : left + square_side] = 255
                image[mask > 0] = 250
                (root / "ground_truth/bad").mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(root / "ground_truth/bad" / f"{index:03d}.png")
            if disk is not None:
                image = np.where(disk, image, 0.0)
            rgb = np.repeat(image.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
            Image.fromarray(rgb).save(root / split / f"{index:03d}.png")
    return root


def make_tiny_folder_dataset(root: Path, size: int = 64, seed: int = 0) -> Path:
    """Write the dataset under ``root`` and return ``root``."""
    return _write_dataset(root, SPLITS, size, seed, (size // 8, size - size // 3), size // 5)


FOLDER_ARGS = {
    "name": "tiny",
    "normal_dir": "train/good",
    "abnormal_dir": "test/bad",
    "normal_test_dir": "test/good",
    "mask_dir": "ground_truth/bad",
    "train_batch_size": 4,
    "eval_batch_size": 4,
    "num_workers": 0,
}
"""Folder datamodule arguments for :func:`make_tiny_folder_dataset`'s layout (besides ``root``)."""


def tiny_folder(root: Path, **overrides: Any) -> Any:
    """anomalib's ``Folder`` datamodule over :func:`make_tiny_folder_dataset`'s layout (:data:`FOLDER_ARGS`)."""
    from anomalib.data import Folder  # noqa: PLC0415 (keeps this module free of torch)

    return Folder(root=root, **{**FOLDER_ARGS, **overrides})


MEDICAL_FOLDER_ARGS = {
    "normal_dir": "train",
    "normal_test_dir": "test_good",
    "abnormal_dir": "test_bad",
    "train_batch_size": 4,
    "eval_batch_size": 4,
    "num_workers": 0,
}
"""``MedicalFolder`` arguments for a flat layout: ``train``, ``test_good`` and ``test_bad`` under ``root``."""


def medical_folder(root: Path, name: str, **overrides: Any) -> Any:
    """``MedicalFolder`` named ``name`` over ``root`` with :data:`MEDICAL_FOLDER_ARGS`; ``overrides`` win."""
    from anomalib_ea2d.data import MedicalFolder  # noqa: PLC0415 (keeps this module free of torch)

    return MedicalFolder(name=name, root=root, **{**MEDICAL_FOLDER_ARGS, **overrides})


TINY_BRAIN = {"num_train": 8, "num_test_normal": 4, "num_test_abnormal": 4, "slices_per_subject": 2, "num_workers": 0}
"""A seconds-sized synthetic brain set: 8 training slices (4 subjects), 4 + 4 test slices."""


def tiny_synthetic_brain(root: Path, size: int = 64, **overrides: Any) -> Any:
    """A ``SyntheticBrainMRI`` datamodule of a seconds-sized set (8 train, 4 + 4 test slices) under ``root``.

    ``overrides`` replace any of its arguments.
    """
    from anomalib_ea2d.data import SyntheticBrainMRI  # noqa: PLC0415 (keeps this module free of torch)

    settings: dict[str, Any] = {**TINY_BRAIN, "train_batch_size": 4, "eval_batch_size": 8}
    return SyntheticBrainMRI(root=root, image_size=size, **{**settings, **overrides})


def tiny_synthetic_brain_cli(root: Path, size: int = 64) -> list[str]:
    """The ``--data.*`` arguments of :func:`tiny_synthetic_brain`'s set, for ``anomalib`` commands."""
    args = ["--data.root", str(root), "--data.image_size", str(size)]
    for key, value in TINY_BRAIN.items():
        args += [f"--data.{key}", str(value)]
    return args


DISK_SPLITS = {"train/good": 8, "test/good": 8, "test/bad": 4}


def make_tiny_disk_dataset(root: Path, size: int = 64, seed: int = 0) -> Path:
    """Like :func:`make_tiny_folder_dataset`, but the texture fills a disk on a black background.

    For region-of-interest tests: the foreground (the disk, radius ``0.35 * size``) is known, and
    the anomalies (bright squares) lie inside it. More normal test images than abnormal ones, so the
    validation half has several normal images to calibrate an operating point on.
    """
    yy, xx = np.mgrid[0:size, 0:size] / size
    disk = (yy - 0.5) ** 2 + (xx - 0.5) ** 2 <= 0.35**2
    return _write_dataset(root, DISK_SPLITS, size, seed, (size // 3, size // 2), size // 6, disk)
