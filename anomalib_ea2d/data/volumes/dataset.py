"""anomalib dataset of the slices of inspected volumes, read one slice at a time.

Each sample is one slice of one volume. Its ``image_path`` is a *virtual* path,
``<volume path>/<axis>_<index>.png`` (the volume file or series folder followed by the slice), so
anomalib's visualiser files the slice pictures under a folder named after the volume, and
:mod:`anomalib_ea2d.callbacks.volume_results` knows which volume and slice a prediction belongs to
(:func:`parse_slice_path`). The samples table also carries ``volume`` and ``slice`` columns.

Example:
    >>> parse_slice_path(slice_path("/data/a.nii.gz", "axial", 7))
    ('/data/a.nii.gz', 7)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anomalib import TaskType
from anomalib.data.dataclasses import ImageItem
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import LabelName
from torchvision.transforms.v2 import Transform
from torchvision.tv_tensors import Image, Mask

from anomalib_ea2d.data.volumes.records import VolumeRecord

COLUMNS = ["image_path", "mask_path", "label", "label_index", "split", "volume", "slice"]


def slice_path(volume: str | Path, axis: str, index: int) -> str:
    """Virtual path of slice ``index`` of ``volume``."""
    return str(Path(volume) / f"{axis}_{index:04d}.png")


def parse_slice_path(path: str) -> tuple[str, int]:
    """``(volume path, slice index)`` of a virtual slice path made by :func:`slice_path`."""
    virtual = Path(path)
    return str(virtual.parent), int(virtual.stem.rsplit("_", 1)[1])


class VolumeSliceDataset(AnomalibDataset):
    """Slices of volumes as anomalib image items (3-channel ``[0, 1]`` images, masks, labels).

    Args:
        records: Inspected volumes by path (may hold more volumes than this dataset uses).
        keys: Which of ``records`` this dataset holds.
        split: ``"train"``, ``"test"`` or ``"predict"`` (stored in the samples table).
        task: ``TaskType.SEGMENTATION`` when masks exist, else ``TaskType.CLASSIFICATION``.
        augmentations: Transforms applied to image (and mask).
    """

    def __init__(
        self,
        records: dict[str, VolumeRecord],
        keys: Iterable[str],
        split: str,
        task: TaskType,
        augmentations: Transform | None = None,
    ) -> None:
        super().__init__(augmentations=augmentations)
        self.records = records
        rows = []
        for key in keys:
            record = records[key]
            axis = record.geometry.axis
            for index, label in zip(record.slices, record.slice_labels, strict=True):
                label_index = LabelName.UNKNOWN if record.label_index < 0 else label
                rows.append(
                    {
                        "image_path": slice_path(record.path, axis, index),
                        "mask_path": slice_path(record.mask.path, axis, index) if record.mask is not None else "",
                        "label": {0: "normal", 1: "abnormal"}.get(int(label_index), "unknown"),
                        "label_index": int(label_index),
                        "split": split,
                        "volume": key,
                        "slice": index,
                    }
                )
        samples = pd.DataFrame(rows, columns=COLUMNS)
        samples.attrs["task"] = TaskType(task)
        self.samples = samples

    @AnomalibDataset.samples.setter
    def samples(self, samples: pd.DataFrame) -> None:
        """Set the samples; the paths are virtual, so only the columns are checked (sorted by volume, slice)."""
        missing = [column for column in ("image_path", "split", "volume", "slice") if column not in samples]
        if missing:
            msg = f"Volume slice samples need the columns {missing}."
            raise ValueError(msg)
        self._samples = samples.sort_values(by=["volume", "slice"], ignore_index=True, kind="stable")

    @property
    def volumes(self) -> list[str]:
        """Paths of the volumes in this dataset, in order."""
        return list(dict.fromkeys(self.samples["volume"]))

    def __getitem__(self, index: int) -> ImageItem:
        """Read one slice: image (3 channels, ``[0, 1]``), mask, label, then augment."""
        sample = self.samples.iloc[index]
        record = self.records[sample.volume]
        plane = record.image(int(sample.slice))
        image = Image(torch.from_numpy(np.ascontiguousarray(plane))[None].expand(3, -1, -1).clone())
        label_index = int(sample.label_index)
        gt_mask = None
        if self.task == TaskType.SEGMENTATION and label_index != LabelName.UNKNOWN:
            gt_mask = Mask(torch.from_numpy(np.ascontiguousarray(record.mask_slice(int(sample.slice)))).to(torch.uint8))
        if self.augmentations:
            if gt_mask is not None:
                image, gt_mask = self.augmentations(image, gt_mask)
            else:
                image = self.augmentations(image)
        return ImageItem(
            image=image,
            gt_mask=gt_mask,
            gt_label=None if label_index == LabelName.UNKNOWN else torch.tensor(label_index),
            image_path=sample.image_path,
            mask_path=sample.mask_path or None,
        )


__all__ = ["VolumeSliceDataset", "parse_slice_path", "slice_path"]
