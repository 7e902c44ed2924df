"""Inspection at setup: foreground slices, slice_range, labels from masks, and one clear error per bad volume."""

from __future__ import annotations

import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from anomalib_ea2d.data.volumes import MedicalVolumes, VolumeReadError
from anomalib_ea2d.data.volumes.records import SlicingOptions, find_volumes, inspect_volume
from tests.helpers.volumes import SHAPE, blob, head, write_nifti_set


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def test_foreground_slices_and_slice_range(tmp_path: Path) -> None:
    data = np.zeros((10, 10, 20), np.float32)
    data[2:8, 2:8, 5:15] = 1.0  # foreground on slices 5..14
    path = _save(tmp_path / "v.nii.gz", data)
    assert inspect_volume(path, 0, SlicingOptions()).slices == list(range(5, 15))
    assert inspect_volume(path, 0, SlicingOptions(slice_range=(0.5, 1.0))).slices == list(range(10, 15))
    coronal = inspect_volume(path, 0, SlicingOptions(axis="coronal")).slices
    assert coronal == list(range(2, 8))


def test_slice_labels_come_from_the_mask(tmp_path: Path) -> None:
    data, lesion = head(), blob()
    volume = _save(tmp_path / "v.nii.gz", data)
    mask = _save(tmp_path / "m.nii.gz", lesion.astype(np.uint8))
    record = inspect_volume(volume, 1, SlicingOptions(), mask)
    expected = [int(lesion[:, :, k].any()) for k in record.slices]
    assert record.slice_labels == expected
    assert 0 < sum(expected) < len(expected)  # some slices of the abnormal volume are normal
    k = record.slices[expected.index(1)]
    assert record.mask_slice(k).sum() == lesion[:, :, k].sum()


def test_percentile_scaling_is_per_volume(tmp_path: Path) -> None:
    data = head()
    a = inspect_volume(_save(tmp_path / "a.nii.gz", data), 0, SlicingOptions())
    b = inspect_volume(_save(tmp_path / "b.nii.gz", data * 7.0 + 3.0), 0, SlicingOptions())
    k = a.slices[len(a.slices) // 2]
    np.testing.assert_allclose(a.image(k), b.image(k), atol=1e-5)
    assert a.image(k).min() >= 0.0
    assert a.image(k).max() <= 1.0


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda d: d.__setitem__((1, 1, 1), np.nan), r"v\.nii\.gz has 1 NaN/Inf voxels; replace them"),
        (lambda d: d.__setitem__((1, 1, 1), np.inf), r"v\.nii\.gz has 1 NaN/Inf voxels"),
        (lambda d: d.fill(0.0), r"v\.nii\.gz has no foreground .*remove it, or lower foreground_threshold"),
    ],
)
def test_bad_voxels_are_named(tmp_path: Path, make: object, pattern: str) -> None:
    data = head()
    make(data)  # type: ignore[operator]
    with pytest.raises(VolumeReadError, match=pattern):
        inspect_volume(_save(tmp_path / "v.nii.gz", data), 0, SlicingOptions())


@pytest.mark.parametrize(
    ("mask_shape", "mask_affine"),
    [((SHAPE[0], SHAPE[1], SHAPE[2] - 1), np.eye(4)), (SHAPE, np.diag([2.0, 1.0, 1.0, 1.0]))],
)
def test_a_mask_on_another_grid_is_refused(
    tmp_path: Path, mask_shape: tuple[int, ...], mask_affine: np.ndarray
) -> None:
    volume = _save(tmp_path / "v.nii.gz", head())
    mask = _save(tmp_path / "m.nii.gz", np.zeros(mask_shape, np.uint8), mask_affine)
    with pytest.raises(VolumeReadError, match=r"Mask .*m\.nii\.gz does not share the grid .*resample the mask"):
        inspect_volume(volume, 1, SlicingOptions(), mask)


def test_an_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(VolumeReadError, match=r"empty holds no volumes; put \.nii/\.nii\.gz files"):
        find_volumes(tmp_path / "empty")


def _datamodule(root: Path, **kwargs: object) -> MedicalVolumes:
    args = {"normal_dir": "train/good", "abnormal_dir": "test/lesion", "normal_test_dir": "test/good"}
    return MedicalVolumes(name="v", root=root, mask_dir="ground_truth/lesion", num_workers=0, **{**args, **kwargs})


def test_error_mode_lists_every_bad_volume_and_skip_mode_leaves_them_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_nifti_set(tmp_path / "set", train=3)
    _save(root / "train/good/nan.nii.gz", np.full(SHAPE, np.nan, np.float32))
    (root / "test/good/broken.nii.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(
        VolumeReadError, match=r"(?s)2 of 9 volumes .*nan\.nii\.gz.*broken\.nii\.gz.*on_bad_volume='skip'"
    ):
        _datamodule(root).setup()
    datamodule = _datamodule(root, on_bad_volume="skip")
    datamodule.setup()
    assert "left out 2 unusable volumes" in caplog.text
    assert "broken.nii.gz" in caplog.text
    assert len(datamodule.volume_records) == 7


def test_an_abnormal_volume_without_mask_is_named(tmp_path: Path) -> None:
    root = write_nifti_set(tmp_path / "set")
    (root / "ground_truth/lesion/lesion_00.nii.gz").unlink()
    with pytest.raises(VolumeReadError, match=r"lesion_00\.nii\.gz has no mask named lesion_00"):
        _datamodule(root).setup()


def test_datasets_hold_no_voxels(tmp_path: Path) -> None:
    """Memory does not grow with the volumes' size: a dataset keeps paths and slice lists only."""
    root = write_nifti_set(tmp_path / "set", train=4)
    datamodule = _datamodule(root, val_split_mode="none")
    datamodule.setup()
    per_volume = len(pickle.dumps(datamodule.train_data)) / len(datamodule.train_data.volumes)
    assert per_volume < 0.1 * np.prod(SHAPE) * 4  # far less than one float32 volume


def test_output_names_keep_the_input_names_and_rename_only_clashes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Test volumes named like training volumes keep their names; two test inputs with one stem: one log line."""
    root = write_nifti_set(tmp_path / "set", train=2, test_normal=2)  # train/good and test/good: good_00, good_01
    _save(root / "test/good/good_00.nii", head(seed=3))  # a second test input with the stem good_00
    datamodule = _datamodule(root, val_split_mode="none")
    datamodule.setup()
    names = {key: datamodule.volume_records[key].name for key in datamodule.test_data.volumes}
    good = root / "test/good"
    assert names[str(good / "good_00.nii")] == "good_00"
    assert names[str(good / "good_00.nii.gz")] == "good_00_2"
    assert names[str(good / "good_01.nii.gz")] == "good_01"
    assert names[str(root / "test/lesion/lesion_00.nii.gz")] == "lesion_00"
    renames = [record.getMessage() for record in caplog.records if "renamed" in record.getMessage()]
    assert len(renames) == 1
    assert f"{good / 'good_00.nii.gz'} -> good_00_2" in renames[0]
    datamodule.setup()  # set up again: said once
    assert len([record for record in caplog.records if "renamed" in record.getMessage()]) == 1
