"""Slice items: 3-channel [0, 1] images, masks and labels; virtual slice paths name volume and slice."""

from __future__ import annotations

from pathlib import Path

import torch

from anomalib_ea2d.data.volumes import MedicalVolumes
from anomalib_ea2d.data.volumes.dataset import parse_slice_path
from tests.helpers.volumes import VOLUME_FOLDERS, write_nifti_set


def test_items_of_an_abnormal_volume(tmp_path: Path) -> None:
    root = write_nifti_set(tmp_path / "set", train=1, test_normal=1, test_abnormal=1)
    datamodule = MedicalVolumes(
        name="v",
        root=root,
        **VOLUME_FOLDERS,
        val_split_mode="none",
        num_workers=0,
    )
    datamodule.setup()
    samples = datamodule.test_data.samples
    lesion = samples[samples.volume.str.contains("lesion")]
    assert set(lesion.label_index) == {0, 1}  # slice labels from the mask
    for index in lesion.index:
        item = datamodule.test_data[index]
        assert item.image.shape[0] == 3
        assert torch.equal(item.image[0], item.image[2])
        assert float(item.image.min()) >= 0.0
        assert float(item.image.max()) <= 1.0
        assert int(item.gt_label) == int(item.gt_mask.any())
        volume, slice_index = parse_slice_path(item.image_path)
        assert (volume, slice_index) == (lesion.volume[index], lesion.slice[index])
