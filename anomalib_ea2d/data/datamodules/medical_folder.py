r"""anomalib ``Folder`` datamodule for medical images, checked at setup.

:class:`MedicalFolder` is anomalib's :class:`~anomalib.data.Folder` (same folder layout, same
arguments) with two changes:

* images and masks are read with :func:`~anomalib_ea2d.data.readers.image.read_medical_image`, which
  keeps 16-bit and float data instead of clipping them to 8 bits (see that module for the scaling),
  through :class:`~anomalib_ea2d.data.datasets.medical_folder.MedicalFolderDataset`;
* at setup every image and mask is decoded once (in threads) and **all** unusable files are
  reported together before training starts (``on_bad_image="error"``, the default), or left out
  with a warning listing them (``on_bad_image="skip"``). Without the check, a single corrupt file
  stops training when its batch comes up, possibly hours in; the check costs about one pass over
  the data and can be turned off with ``check_images=False``.

:class:`MedicalPredictDataset` does the same for ``anomalib predict`` on a folder of images (a plain
``--data <folder>`` is routed to it by :mod:`anomalib_ea2d.data.readers.predict`); it is a dataset,
in :mod:`anomalib_ea2d.data.datasets.medical_folder`.

From the command line::

    anomalib train --model EA2D --data anomalib_ea2d.data.MedicalFolder \
        --data.name xray --data.root datasets/xray --data.normal_dir train/good \
        --data.abnormal_dir test/bad --data.normal_test_dir test/good
    anomalib predict --model EA2D --ckpt_path model.ckpt \
        --data anomalib_ea2d.data.MedicalPredictDataset --data.path scans/
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from anomalib.data import Folder
from anomalib.data.utils import Split, TestSplitMode, ValSplitMode
from torchvision.transforms.v2 import Transform

from anomalib_ea2d.data.datamodules.calibration import CalibrationSplitMixin
from anomalib_ea2d.data.datasets.medical_folder import (
    MedicalFolderDataset,
    MedicalPredictDataset,
    OnBadImage,
    check_on_bad_image,
)
from anomalib_ea2d.data.readers.image import (
    IntensityScaling,
    check_intensity_scaling,
    describe_bad_images,
    find_bad_images,
    log_bad_images,
)

logger = logging.getLogger(__name__)


def _mask_paths(samples: pd.DataFrame) -> list[str | None]:
    if "mask_path" not in samples:
        return [None] * len(samples)
    return [path if isinstance(path, str) and path else None for path in samples["mask_path"]]


class MedicalFolder(CalibrationSplitMixin, Folder):
    r"""anomalib's ``Folder`` datamodule for 8/16-bit and float medical images, checked at setup.

    Args:
        name: Name of the dataset (used for logging and the results folder).
        normal_dir: Folder(s) of normal images.
        root: Folder the other folders are relative to.
        abnormal_dir: Folder(s) of abnormal test images.
        normal_test_dir: Folder(s) of normal test images.
        mask_dir: Folder(s) of masks of the abnormal images (same file names).
        normal_split_ratio: Share of normal training images moved to the test set when
            ``normal_test_dir`` is not given.
        extensions: Image file extensions to use; default: anomalib's list (PNG, JPEG, TIFF, ...).
        train_batch_size: Training batch size.
        eval_batch_size: Validation/test batch size.
        num_workers: Data-loading workers.
        train_augmentations: Augmentations of training images.
        val_augmentations: Augmentations of validation images.
        test_augmentations: Augmentations of test images.
        augmentations: Augmentations of every subset without its own.
        test_split_mode: How to get the test set (anomalib's ``TestSplitMode``).
        test_split_ratio: Share of training images for the test set (split modes that need it).
        val_split_mode: How to get the validation set (anomalib's ``ValSplitMode``).
        val_split_ratio: Share of images for the validation set.
        seed: Seed of the random splits.
        intensity_scaling: ``"dtype"`` (16-bit divided by 65535, floats kept in ``[0, 1]``) or
            ``"minmax"`` (each image's own range); see :mod:`anomalib_ea2d.data.readers.image`.
        check_images: Decode every image and mask at setup and report the unusable ones.
        on_bad_image: ``"error"``: stop at setup with a message listing every unusable file;
            ``"skip"``: leave them out and log a warning listing them.
        calibration_split_ratio: Share of the normal training images held out of training for
            calibration (:class:`~anomalib_ea2d.data.datamodules.calibration.CalibrationSplitMixin`);
            0 (default): none.
        calibration_group_pattern: A regular expression whose first group is the subject (or
            volume) in each training file name, e.g. ``'^(sub-\w+)_'``: the calibration split then
            holds out whole subjects; ``None`` (default): single images.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> for split in ("train", "test"):
        ...     (root / split).mkdir()
        ...     for i in range(2):
        ...         Image.fromarray(np.full((32, 32), 1000 * i, np.uint16)).save(root / split / f"{i}.png")
        >>> (root / "train" / "broken.png").write_text("not an image")
        12
        >>> datamodule = MedicalFolder(name="demo", root=root, normal_dir="train", abnormal_dir="test",
        ...                            num_workers=0, on_bad_image="skip")
        >>> datamodule.setup()
        >>> len(datamodule.train_data)
        2
    """

    def __init__(
        self,
        name: str,
        normal_dir: str | Path | Sequence[str | Path],
        root: str | Path | None = None,
        abnormal_dir: str | Path | Sequence[str | Path] | None = None,
        normal_test_dir: str | Path | Sequence[str | Path] | None = None,
        mask_dir: str | Path | Sequence[str | Path] | None = None,
        normal_split_ratio: float = 0.2,
        extensions: tuple[str, ...] | None = None,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
        val_split_mode: ValSplitMode | str = ValSplitMode.FROM_TEST,
        val_split_ratio: float = 0.5,
        seed: int | None = None,
        intensity_scaling: IntensityScaling = "dtype",
        check_images: bool = True,
        on_bad_image: OnBadImage = "error",
        calibration_split_ratio: float = 0.0,
        calibration_group_pattern: str | None = None,
    ) -> None:
        self._init_calibration_split(calibration_split_ratio, calibration_group_pattern)
        self.intensity_scaling = check_intensity_scaling(intensity_scaling)
        self.check_images = check_images
        self.on_bad_image = check_on_bad_image(on_bad_image)
        super().__init__(
            name=name,
            normal_dir=normal_dir,
            root=root,
            abnormal_dir=abnormal_dir,
            normal_test_dir=normal_test_dir,
            mask_dir=mask_dir,
            normal_split_ratio=normal_split_ratio,
            extensions=extensions,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )

    def _dataset(self, split: Split) -> MedicalFolderDataset:
        return MedicalFolderDataset(
            name=self.name,
            split=split,
            root=self.root,
            normal_dir=self.normal_dir,
            abnormal_dir=self.abnormal_dir,
            normal_test_dir=self.normal_test_dir,
            mask_dir=self.mask_dir,
            extensions=self.extensions,
            intensity_scaling=self.intensity_scaling,
        )

    def _setup(self, _stage: str | None = None) -> None:
        self.train_data = self._dataset(Split.TRAIN)
        self.test_data = self._dataset(Split.TEST)
        if self.check_images:
            self._check_images()

    def _check_images(self) -> None:
        """Decode every sample once; raise listing all unusable files, or drop them with a warning."""
        datasets = {"train": self.train_data, "test": self.test_data}
        start = time.perf_counter()
        bad: dict[str, str] = {}
        total = 0
        for dataset in datasets.values():
            samples = dataset.samples
            total += len(samples)
            bad.update(find_bad_images(list(samples["image_path"]), _mask_paths(samples), self.intensity_scaling))
        logger.info("MedicalFolder %r: checked %d images in %.1f s.", self.name, total, time.perf_counter() - start)
        if not bad:
            return
        what = f"MedicalFolder {self.name!r}"
        log_bad_images(bad, what)
        if self.on_bad_image == "error":
            msg = (
                f"{describe_bad_images(bad, total, what)}. Fix or remove these files, or pass "
                "on_bad_image='skip' (--data.on_bad_image skip) to train without them."
            )
            raise ValueError(msg)
        for split, dataset in datasets.items():
            keep = ~dataset.samples["image_path"].isin(bad)
            if not keep.any():
                msg = f"{what}: no usable {split} images are left after skipping {len(bad)} unusable ones."
                raise ValueError(msg)
            dataset.samples = dataset.samples[keep].reset_index(drop=True)
        logger.warning("%s: skipped %d unusable images of %d (listed above).", what, len(bad), total)


# MedicalPredictDataset: the old module path anomalib_ea2d.data.medical_folder (now this module) named it too.
__all__ = ["MedicalFolder", "MedicalFolderDataset", "MedicalPredictDataset"]
