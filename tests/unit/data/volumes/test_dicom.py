"""DICOM series written with pydicom: HU rescaling/windowing, 16-bit MR, shuffled files, coronal series, bad series."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from anomalib_ea2d.data.volumes.dicom import DicomSeries
from anomalib_ea2d.data.volumes.errors import VolumeReadError
from anomalib_ea2d.data.volumes.nifti import NiftiVolume
from anomalib_ea2d.data.volumes.orientation import AXES, SliceGeometry
from anomalib_ea2d.data.volumes.records import SlicingOptions, inspect_volume
from tests.helpers.volumes import write_dicom_series

RAS = np.random.default_rng(0).integers(0, 1000, size=(6, 7, 5)).astype(np.int16)  # world volume, RAS, 1 mm


def _axial(world: np.ndarray) -> np.ndarray:
    """Stored (column, row, slice) of an axial acquisition: rows run to patient left, columns to posterior."""
    return world[::-1, ::-1, :]


def _coronal(world: np.ndarray) -> np.ndarray:
    """Stored array of a coronal acquisition (rows to the left, columns down, slices to posterior)."""
    return np.transpose(world[::-1, ::-1, ::-1], (0, 2, 1))


def _slices(volume: DicomSeries | NiftiVolume, axis: str) -> list[np.ndarray]:
    geometry = SliceGeometry.from_affine(volume.affine, volume.shape, axis)
    return [volume.read_slice(geometry, k) for k in range(geometry.num_slices)]


def test_ct_values_are_rescaled_to_hu_and_files_ordered_by_position(tmp_path: Path) -> None:
    stored = _axial(RAS)
    series = DicomSeries(write_dicom_series(tmp_path / "ct", stored, slope=2.0, intercept=-1024.0, spacing=(1, 1, 1)))
    assert series.shape == stored.shape
    # file names are shuffled and InstanceNumber runs backwards: only the positions give this order
    np.testing.assert_array_equal(series.read_array(), stored * 2.0 - 1024.0)


@pytest.mark.parametrize("axis", AXES)
def test_axial_and_coronal_acquisitions_give_the_slices_of_the_ras_volume(tmp_path: Path, axis: str) -> None:
    nib.save(nib.Nifti1Image(RAS, np.eye(4)), tmp_path / "ras.nii")
    axial = DicomSeries(write_dicom_series(tmp_path / "axial", _axial(RAS), spacing=(1, 1, 1)))
    coronal = DicomSeries(
        write_dicom_series(tmp_path / "coronal", _coronal(RAS), orientation=(1, 0, 0, 0, 0, -1), spacing=(1, 1, 1))
    )
    expected = _slices(NiftiVolume(tmp_path / "ras.nii"), axis)
    for series in (axial, coronal):
        got = _slices(series, axis)
        assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True)), (series.name, axis)


def test_ct_window_scales_hu(tmp_path: Path) -> None:
    body = np.full((8, 8, 4), -1000, np.int16)  # air
    body[2:6, 2:6, :] = 40  # soft tissue at the window level
    folder = write_dicom_series(tmp_path / "ct", body + 1024, intercept=-1024.0)
    record = inspect_volume(folder, 0, SlicingOptions(window=(40, 400)))
    image = record.image(record.slices[0])
    assert image.min() == 0.0  # air is below the window
    np.testing.assert_allclose(image.max(), 0.5)  # the level maps to the middle


def test_16_bit_mr_keeps_its_full_range(tmp_path: Path) -> None:
    values = np.linspace(0, 60000, 8 * 9 * 4).reshape(8, 9, 4).astype(np.uint16)
    series = DicomSeries(write_dicom_series(tmp_path / "mr", values, modality="MR"))
    np.testing.assert_array_equal(series.read_array(), values.astype(np.float32))
    record = inspect_volume(series.path, 0, SlicingOptions(percentiles=(0, 100)))
    assert record.window == (float(values[values > 0].min()), 60000.0)


def test_two_series_in_one_folder_are_refused(tmp_path: Path) -> None:
    write_dicom_series(tmp_path / "mixed", RAS[:, :, :3], series_uid="1.2.3.1")
    write_dicom_series(tmp_path / "other", RAS[:, :, :3], series_uid="1.2.3.2", shuffle_seed=None)
    for path in (tmp_path / "other").iterdir():
        shutil.move(path, tmp_path / "mixed" / f"b_{path.name}")
    with pytest.raises(VolumeReadError, match=r"mixed holds 2 series .*put each series in its own folder"):
        DicomSeries(tmp_path / "mixed")


def test_missing_slices_are_refused(tmp_path: Path) -> None:
    folder = write_dicom_series(tmp_path / "gappy", RAS, skip=(2,))
    with pytest.raises(VolumeReadError, match=r"gappy is unevenly spaced .*slices are missing"):
        DicomSeries(folder)


def test_a_non_dicom_file_is_named(tmp_path: Path) -> None:
    folder = write_dicom_series(tmp_path / "series", RAS)
    (folder / "readme.txt").write_text("notes")
    with pytest.raises(VolumeReadError, match=r"readme\.txt .*remove it from the series folder"):
        DicomSeries(folder)
