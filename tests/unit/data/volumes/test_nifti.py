"""NIfTI reader: lazy slices, scale factors, and one clear error for each bad file."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from anomalib_ea2d.data.volumes.errors import VolumeReadError
from anomalib_ea2d.data.volumes.nifti import NiftiVolume
from anomalib_ea2d.data.volumes.orientation import SliceGeometry


def test_slices_apply_the_scale_factors(tmp_path: Path) -> None:
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_slope_inter(2.0, -10.0)
    nib.save(image, tmp_path / "a.nii")
    volume = NiftiVolume(tmp_path / "a.nii")
    geometry = SliceGeometry.from_affine(volume.affine, volume.shape, "axial")
    np.testing.assert_allclose(volume.read_slice(geometry, 3), geometry.read(data * 2.0 - 10.0, 3))


def test_a_single_volume_4d_file_is_accepted(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5, 1), np.float32), np.eye(4)), tmp_path / "b.nii.gz")
    assert NiftiVolume(tmp_path / "b.nii.gz").read_array().shape == (3, 4, 5)


@pytest.mark.parametrize("shape", [(8, 9), (3, 4, 5, 2)])
def test_non_3d_files_are_refused_by_name(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), path)
    with pytest.raises(VolumeReadError, match=r"scan\.nii\.gz has shape .* not a 3-D volume; save each 3-D volume"):
        NiftiVolume(path)


def test_a_truncated_file_is_reported_when_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 20)).astype(np.float32), np.eye(4)), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VolumeReadError, match=r"cut\.nii\.gz .*truncated or corrupt"):
        NiftiVolume(path).read_array()


def test_a_file_that_is_not_nifti_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "notes.nii.gz"
    path.write_bytes(gzip.compress(b"not a nifti header at all" * 20))
    with pytest.raises(VolumeReadError, match=r"notes\.nii\.gz .*corrupt or not NIfTI"):
        NiftiVolume(path)
