"""Tiny generated volumes for tests: NIfTI sets in the MedicalVolumes layout, DICOM series written with pydicom."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from scipy import ndimage

SHAPE = (32, 40, 24)

VOLUME_FOLDERS = {
    "normal_dir": "train/good",
    "abnormal_dir": "test/lesion",
    "normal_test_dir": "test/good",
    "mask_dir": "ground_truth/lesion",
}
"""``MedicalVolumes`` folder arguments for :func:`write_nifti_set`'s layout (besides ``root``)."""


def head(shape: tuple[int, int, int] = SHAPE, seed: int = 0) -> np.ndarray:
    """A smooth textured ellipsoid on a zero background (float32, arbitrary units)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    inside = ((grid / np.array([0.8, 0.85, 0.75])[:, None, None, None]) ** 2).sum(0) < 1
    texture = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    return np.where(inside, 100 + 15 * texture / texture.std(), 0).astype(np.float32)


def blob(shape: tuple[int, int, int] = SHAPE, seed: int = 0, radius: float = 4.0) -> np.ndarray:
    """A boolean sphere inside the head."""
    rng = np.random.default_rng(seed + 1000)
    centre = np.array(shape) / 2 + rng.uniform(-3, 3, 3)
    index = np.indices(shape)
    return (((index - centre[:, None, None, None]) ** 2).sum(0)) < radius**2


def write_nifti_set(root: Path, train: int = 4, test_normal: int = 2, test_abnormal: int = 2, seed: int = 0) -> Path:
    """MedicalVolumes layout: train/good, test/good, test/lesion, ground_truth/lesion (same names)."""
    affine = np.diag([1.2, 1.0, 1.5, 1.0])
    for folder, count, lesion in (
        ("train/good", train, False),
        ("test/good", test_normal, False),
        ("test/lesion", test_abnormal, True),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            data = head(seed=seed * 100 + index + (50 if "test" in folder else 0) + (20 if lesion else 0))
            name = f"{folder.split('/')[1]}_{index:02d}.nii.gz"
            if lesion:
                mask = blob(seed=index)
                data[mask] = 190.0
                (root / "ground_truth/lesion").mkdir(parents=True, exist_ok=True)
                nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), root / "ground_truth/lesion" / name)
            nib.save(nib.Nifti1Image(data, affine), root / folder / name)
    return root


def write_dicom_series(
    folder: Path,
    volume: np.ndarray,
    *,
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = 0.0,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    spacing: tuple[float, float, float] = (0.8, 0.9, 2.0),
    skip: tuple[int, ...] = (),
    series_uid: str | None = None,
    shuffle_seed: int | None = 0,
) -> Path:
    """Write ``volume`` (axes: column, row, slice; stored values) as one single-frame file per slice.

    ``spacing`` is (between columns, between rows, between slices) in mm; slice ``k`` lies at
    ``k * spacing[2]`` along the normal of ``orientation``. Files are named in a shuffled order, and
    InstanceNumber runs backwards, so neither can be used to order them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    row_dir, col_dir = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row_dir, col_dir)
    series_uid = series_uid or generate_uid()
    n = volume.shape[2]
    order = np.random.default_rng(shuffle_seed).permutation(n) if shuffle_seed is not None else np.arange(n)
    for k in range(n):
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = modality, series_uid, "1.2.3"
        ds.InstanceNumber = n - k
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.ImagePositionPatient = [float(v) for v in (10.0, -20.0, 30.0) + normal * spacing[2] * k]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        plane = volume[:, :, k].T  # rows x columns
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        signed = plane.min() < 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, int(signed)
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = plane.astype(np.int16 if signed else np.uint16).tobytes()
        ds.save_as(folder / f"img{order[k]:04d}.dcm", enforce_file_format=True)
    return folder
