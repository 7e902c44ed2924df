"""anomalib datasets for medical images: ``FolderDataset`` and ``PredictDataset`` read with the medical-image reader.

:class:`MedicalFolderDataset` is what :class:`~anomalib_ea2d.data.datamodules.medical_folder.MedicalFolder`
builds for each split: images and masks are read with
:func:`~anomalib_ea2d.data.readers.image.read_medical_image`, which keeps 16-bit and float data
instead of clipping them to 8 bits, and masks are paired with their images by name.
:class:`MedicalPredictDataset` does the same for ``anomalib predict`` on a folder of images, and
checks every file when it is created (a plain ``--data <folder>`` of EA2D is routed to it by
:mod:`anomalib_ea2d.data.readers.predict`)::

    anomalib predict --model EA2D --ckpt_path model.ckpt \
        --data anomalib_ea2d.data.MedicalPredictDataset --data.path scans/
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from anomalib import TaskType
from anomalib.data import PredictDataset
from anomalib.data.dataclasses import DatasetItem, ImageItem
from anomalib.data.datasets.image.folder import FolderDataset
from anomalib.data.utils import LabelName, Split
from torchvision.transforms.v2 import Transform
from torchvision.tv_tensors import Mask

from anomalib_ea2d.data.readers.image import (
    IntensityScaling,
    check_intensity_scaling,
    describe_bad_images,
    find_bad_images,
    log_bad_images,
    read_medical_image,
    read_medical_mask,
)
from anomalib_ea2d.data.readers.mask_pairing import list_masks, pair_masks, resolve_folders

logger = logging.getLogger(__name__)

OnBadImage = Literal["error", "skip"]
ON_BAD_IMAGE: tuple[str, ...] = ("error", "skip")


def check_on_bad_image(on_bad_image: str) -> OnBadImage:
    """``on_bad_image`` if it is ``"error"`` or ``"skip"``; a ``ValueError`` naming both otherwise.

    Example:
        >>> check_on_bad_image("skip")
        'skip'
    """
    if on_bad_image not in ON_BAD_IMAGE:
        msg = f"on_bad_image must be one of {ON_BAD_IMAGE}, got {on_bad_image!r}."
        raise ValueError(msg)
    return on_bad_image  # type: ignore[return-value]


class MedicalFolderDataset(FolderDataset):
    """anomalib's ``FolderDataset`` reading images and masks with the medical-image reader.

    Args:
        intensity_scaling: ``"dtype"`` or ``"minmax"``, see :func:`read_medical_image`.
        **kwargs: Arguments of :class:`~anomalib.data.datasets.image.folder.FolderDataset`.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "good").mkdir()
        >>> Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(root / "good" / "a.png")
        >>> dataset = MedicalFolderDataset(name="demo", root=root, normal_dir="good", split="train")
        >>> float(dataset[0].image.max())
        1.0
    """

    def __init__(
        self,
        name: str,
        normal_dir: str | Path | Sequence[str | Path],
        augmentations: Transform | None = None,
        root: str | Path | None = None,
        abnormal_dir: str | Path | Sequence[str | Path] | None = None,
        normal_test_dir: str | Path | Sequence[str | Path] | None = None,
        mask_dir: str | Path | Sequence[str | Path] | None = None,
        split: str | Split | None = None,
        extensions: tuple[str, ...] | None = None,
        intensity_scaling: IntensityScaling = "dtype",
    ) -> None:
        self.intensity_scaling = check_intensity_scaling(intensity_scaling)
        # anomalib pairs masks with images by sorted position and fails with a pandas error when one is
        # missing; pair them here instead, by name, so a missing mask is reported as such (see pair_masks)
        super().__init__(
            name=name,
            normal_dir=normal_dir,
            augmentations=augmentations,
            root=root,
            abnormal_dir=abnormal_dir,
            normal_test_dir=normal_test_dir,
            mask_dir=None,
            split=split,
            extensions=extensions,
        )
        self.mask_dir = mask_dir
        if mask_dir is not None and abnormal_dir is not None:
            masks = list_masks(mask_dir, root, extensions)
            abnormal = self.samples.label_index == LabelName.ABNORMAL
            images = list(self.samples.loc[abnormal, "image_path"])
            self.samples.loc[abnormal, "mask_path"] = pair_masks(images, masks, resolve_folders(mask_dir, root)[0])
            self.samples.attrs["task"] = TaskType.SEGMENTATION.value

    def __getitem__(self, index: int) -> DatasetItem:
        """Read sample ``index``: image, mask (zeros for normal images) and label, then augment."""
        sample = self.samples.iloc[index]
        image = read_medical_image(sample.image_path, self.intensity_scaling)
        label_index = sample.label_index
        gt_mask = None
        if self.task == TaskType.SEGMENTATION:
            if label_index == LabelName.NORMAL:
                gt_mask = Mask(torch.zeros(image.shape[-2:], dtype=torch.uint8))
            elif label_index == LabelName.ABNORMAL:
                gt_mask = read_medical_mask(sample.mask_path)
        if self.augmentations:
            if self.task == TaskType.SEGMENTATION:
                placeholder = gt_mask if gt_mask is not None else Mask(torch.zeros(image.shape[-2:], dtype=torch.uint8))
                image, augmented = self.augmentations(image, placeholder)
                gt_mask = augmented if gt_mask is not None else None
            else:
                image = self.augmentations(image)
        return ImageItem(
            image=image,
            gt_mask=gt_mask,
            gt_label=None if label_index == LabelName.UNKNOWN else torch.tensor(label_index),
            image_path=sample.image_path,
            mask_path=sample.mask_path,
        )


class MedicalPredictDataset(PredictDataset):
    """anomalib's ``PredictDataset`` reading with the medical-image reader, checked when created.

    Args:
        path: An image file or a folder of images.
        transform: Optional transform of each image.
        image_size: Kept for compatibility with ``PredictDataset``; resizing is the model's.
        intensity_scaling: ``"dtype"`` or ``"minmax"``, see :func:`read_medical_image`.
        check_images: Decode every image at creation and report the unusable ones.
        on_bad_image: ``"error"``: raise listing every unusable file; ``"skip"``: leave them out
            with a warning.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(folder / "scan.png")
        >>> dataset = MedicalPredictDataset(folder)
        >>> float(dataset[0].image.max())
        1.0
    """

    def __init__(
        self,
        path: str | Path,
        transform: Transform | None = None,
        image_size: int | tuple[int, int] = (256, 256),
        intensity_scaling: IntensityScaling = "dtype",
        check_images: bool = True,
        on_bad_image: OnBadImage = "error",
    ) -> None:
        super().__init__(path=path, transform=transform, image_size=image_size)
        self.intensity_scaling = check_intensity_scaling(intensity_scaling)
        if check_images:
            self._check_images(f"predict folder {path}", check_on_bad_image(on_bad_image))

    @classmethod
    def from_predict_dataset(
        cls, dataset: PredictDataset, intensity_scaling: IntensityScaling = "dtype"
    ) -> MedicalPredictDataset:
        """The files of anomalib's ``PredictDataset`` (same order and transform), read and checked as here.

        Raises:
            ValueError: Listing every unusable file (``on_bad_image="error"``).

        Example:
            >>> import tempfile, numpy as np
            >>> from PIL import Image
            >>> folder = Path(tempfile.mkdtemp())
            >>> Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(folder / "scan.png")
            >>> float(MedicalPredictDataset.from_predict_dataset(PredictDataset(folder))[0].image.max())
            1.0
        """
        files = list(dataset.image_filenames)
        # A copy of anomalib's dataset, not a new listing: anomalib refuses a single file's non-ASCII
        # path (e.g. "scan ü 000.png") that its folder listing accepted, and listing again costs a walk.
        medical = cls.__new__(cls)
        medical.__dict__.update(vars(dataset))
        medical.intensity_scaling = check_intensity_scaling(intensity_scaling)
        medical.image_filenames = files
        common = Path(os.path.commonpath([str(file) for file in files]))
        what = f"predict folder {common.parent if common.is_file() else common}"
        medical._check_images(what, "error")  # noqa: SLF001 - an instance of this class
        return medical

    def _check_images(self, what: str, on_bad_image: OnBadImage) -> None:
        bad = find_bad_images(self.image_filenames, intensity_scaling=self.intensity_scaling)
        if not bad:
            return
        log_bad_images(bad, what)
        if on_bad_image == "error":
            msg = (
                f"{describe_bad_images(bad, len(self.image_filenames), what)}. Fix or remove these files, "
                "or predict with --data anomalib_ea2d.data.MedicalPredictDataset --data.path ... "
                "--data.on_bad_image skip to leave them out."
            )
            raise ValueError(msg)
        self.image_filenames = [name for name in self.image_filenames if str(name) not in bad]
        if not self.image_filenames:
            msg = f"No usable images are left in {what} after skipping {len(bad)} unusable ones."
            raise ValueError(msg)
        logger.warning("%s: skipped %d unusable images (listed above).", what, len(bad))

    def __getitem__(self, index: int) -> ImageItem:
        """Read image ``index`` (and apply ``transform``)."""
        path = self.image_filenames[index]
        image = read_medical_image(path, self.intensity_scaling)
        if self.transform:
            image = self.transform(image)
        return ImageItem(image=image, image_path=str(path))


__all__ = [
    "ON_BAD_IMAGE",
    "MedicalFolderDataset",
    "MedicalPredictDataset",
    "OnBadImage",
    "check_on_bad_image",
    "pair_masks",
]
