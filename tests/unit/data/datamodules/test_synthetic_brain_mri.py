"""SyntheticBrainMRI (``data.datamodules.synthetic_brain_mri``): batches, labels, masks, validation split."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.tiny_data import tiny_synthetic_brain

SIZE = 64


@pytest.fixture(scope="module")
def brain_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "brain"
    tiny_synthetic_brain(root, SIZE).prepare_data()
    return root


def test_batches_carry_labels_and_masks(brain_root: Path) -> None:
    datamodule = tiny_synthetic_brain(brain_root, SIZE)
    datamodule.setup()
    assert len(datamodule.train_data) == 8
    batch = next(iter(datamodule.test_dataloader()))
    # Half of the 4 + 4 generated test slices (label-balanced) validate; the other half is tested.
    assert tuple(batch.image.shape) == (4, 3, SIZE, SIZE)  # grayscale PNGs are read as RGB
    assert batch.gt_label.sum().item() == 2
    validation = set(datamodule.val_data.samples.image_path)
    assert len(validation) == 4
    assert sorted(datamodule.val_data.samples.label_index) == [0, 0, 1, 1]
    assert validation.isdisjoint(datamodule.test_data.samples.image_path)
    lesion_pixels = batch.gt_mask.flatten(1).sum(1)
    assert bool((lesion_pixels[batch.gt_label.bool()] > 0).all())
    assert bool((lesion_pixels[~batch.gt_label.bool()] == 0).all())
