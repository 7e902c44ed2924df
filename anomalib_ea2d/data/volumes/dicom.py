"""DICOM series (one folder per series) as lazy 3-D volumes, ordered by position, with a RAS affine.

:class:`DicomSeries` reads the headers of every file in a folder (no pixel data), checks that they
form one evenly spaced single-frame series, and orders the slices by ``ImagePositionPatient``
projected on the slice normal (the cross product of the two ``ImageOrientationPatient``
directions) — never by file name or ``InstanceNumber``. The voxel→world affine is built from the
orientation, ``PixelSpacing`` and the positions and converted from DICOM's LPS to RAS, so the
series is sliced in the patient's frame like a NIfTI file. Voxel values are
``stored * RescaleSlope + RescaleIntercept`` (Hounsfield units for CT), per file.

The stored array has axes ``(column, row, slice)``. Reading a slice along the acquisition axis
reads one file; slicing across it reads the whole series (once, cached for the last series used).

Example:
    >>> from anomalib_ea2d.data.volumes.dicom import slice_positions
    >>> slice_positions([[0, 0, 5.0], [0, 0, 1.0], [0, 0, 3.0]], [1, 0, 0, 0, 1, 0]).tolist()
    [5.0, 1.0, 3.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

from anomalib_ea2d.data.volumes.errors import VolumeReadError, describe
from anomalib_ea2d.data.volumes.orientation import SliceGeometry

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
SPACING_TOLERANCE = 0.05
"""Largest relative deviation of a slice gap from the median gap before the series counts as uneven."""


def slice_positions(positions: Sequence[Sequence[float]], orientation: Sequence[float]) -> np.ndarray:
    """Position of each slice along the normal of ``ImageOrientationPatient`` (mm)."""
    orientation = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(orientation[:3], orientation[3:])
    return np.asarray(positions, dtype=np.float64) @ normal


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != "DICOMDIR")


class DicomSeries:
    """A folder holding one single-frame DICOM series, read lazily one file at a time.

    Args:
        folder: The series folder.

    Raises:
        VolumeReadError: If the folder is empty, a file is not DICOM, the folder holds more than one
            series, headers disagree (orientation, size, pixel spacing), positions repeat, or the
            slices are unevenly spaced (missing slices). The message names the folder or file.
    """

    kind = "dicom"

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder)
        self.name = self.path.name
        files = _files(self.path) if self.path.is_dir() else []
        if not files:
            msg = f"DICOM series folder {self.path} holds no files; remove the folder or put the series' files in it."
            raise VolumeReadError(msg)
        headers = [self._header(path) for path in files]
        uids = sorted({str(getattr(h, "SeriesInstanceUID", "")) for h in headers})
        if len(uids) > 1:
            msg = (
                f"DICOM folder {self.path} holds {len(uids)} series (SeriesInstanceUID {', '.join(uids[:3])}"
                f"{', ...' if len(uids) > 3 else ''}); put each series in its own folder."
            )
            raise VolumeReadError(msg)
        first = headers[0]
        for name in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns"):
            missing = [p.name for p, h in zip(files, headers, strict=True) if name not in h]
            if missing:
                msg = (
                    f"DICOM files in {self.path} lack {name} ({', '.join(missing[:3])}); only single-frame image "
                    "series with patient geometry can be sliced: export the series with geometry tags."
                )
                raise VolumeReadError(msg)
        if any(int(getattr(h, "NumberOfFrames", 1) or 1) > 1 for h in headers):
            msg = (
                f"DICOM folder {self.path} holds multi-frame files; convert the series to single-frame files or NIfTI."
            )
            raise VolumeReadError(msg)
        orientation = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
        spacing = np.asarray(first.PixelSpacing, dtype=np.float64)
        for path, header in zip(files, headers, strict=True):
            same = (
                np.allclose(np.asarray(header.ImageOrientationPatient, dtype=np.float64), orientation, atol=1e-4)
                and np.allclose(np.asarray(header.PixelSpacing, dtype=np.float64), spacing, atol=1e-4)
                and (int(header.Rows), int(header.Columns)) == (int(first.Rows), int(first.Columns))
            )
            if not same:
                msg = (
                    f"DICOM file {path} differs from {files[0].name} in orientation, pixel spacing or size; "
                    f"the folder {self.path} must hold one series: move the other images out."
                )
                raise VolumeReadError(msg)
        positions = slice_positions([h.ImagePositionPatient for h in headers], orientation)
        order = np.argsort(positions, kind="stable")
        self.files: list[Path] = [files[i] for i in order]
        sorted_positions = positions[order]
        self._check_spacing(sorted_positions)
        self.shape: tuple[int, int, int] = (int(first.Columns), int(first.Rows), len(files))
        self.affine = self._affine(orientation, spacing, headers[order[0]], headers[order[-1]], len(files))

    def _header(self, path: Path) -> pydicom.Dataset:
        try:
            return pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as error:  # pydicom raises several types for non-DICOM or damaged files
            msg = (
                f"Could not read DICOM file {path} ({describe(error)}); remove it from the series "
                "folder or re-export it."
            )
            raise VolumeReadError(msg) from error

    def _check_spacing(self, positions: np.ndarray) -> None:
        if len(positions) < 2:
            return
        gaps = np.diff(positions)
        step = float(np.median(gaps))
        if step <= 1e-6 or (gaps <= 1e-6).any():
            msg = (
                f"DICOM folder {self.path} has slices at the same position; it holds duplicates or several "
                "series: keep one image per position."
            )
            raise VolumeReadError(msg)
        bad = np.flatnonzero(np.abs(gaps - step) > SPACING_TOLERANCE * step)
        if bad.size:
            at = ", ".join(f"{positions[i]:.2f}→{positions[i + 1]:.2f} mm" for i in bad[:3])
            msg = (
                f"DICOM series {self.path} is unevenly spaced (usual gap {step:.2f} mm, but {at}): slices are "
                "missing; add the missing files or remove the series."
            )
            raise VolumeReadError(msg)

    @staticmethod
    def _affine(
        orientation: np.ndarray, spacing: np.ndarray, first: pydicom.Dataset, last: pydicom.Dataset, n: int
    ) -> np.ndarray:
        row_dir, col_dir = orientation[:3], orientation[3:]
        origin = np.asarray(first.ImagePositionPatient, dtype=np.float64)
        if n > 1:
            step = (np.asarray(last.ImagePositionPatient, dtype=np.float64) - origin) / (n - 1)
        else:
            step = np.cross(row_dir, col_dir) * float(getattr(first, "SliceThickness", 1.0) or 1.0)
        affine = np.eye(4)
        # Voxel (i = column, j = row, k = slice); PixelSpacing is (between rows, between columns).
        affine[:3, 0] = row_dir * spacing[1]
        affine[:3, 1] = col_dir * spacing[0]
        affine[:3, 2] = step
        affine[:3, 3] = origin
        return LPS_TO_RAS @ affine

    def _read_file(self, index: int) -> np.ndarray:
        path = self.files[index]
        try:
            dataset = pydicom.dcmread(path)
            values = apply_modality_lut(dataset.pixel_array, dataset)
        except Exception as error:  # decoding errors come in many types
            msg = (
                f"Could not decode the pixels of DICOM file {path} ({describe(error)}); the file is "
                "damaged or compressed with a codec that is not installed (e.g. pip install pylibjpeg)."
            )
            raise VolumeReadError(msg) from error
        return np.asarray(values, dtype=np.float32).T  # (column, row)

    def read_array(self) -> np.ndarray:
        """The whole series as float32, axes ``(column, row, slice)``."""
        return np.stack([self._read_file(k) for k in range(self.shape[2])], axis=2)

    def read_slice(self, geometry: SliceGeometry, index: int) -> np.ndarray:
        """Slice ``index`` of ``geometry`` as float32, as shown (see :class:`SliceGeometry`)."""
        if geometry.stored_axis == 2:
            plane = self._read_file(geometry.stored_index(index))
        else:  # across it: the whole series, cached for the last series used
            plane = _cached_array(self)[geometry.slicer(index)]
        return np.ascontiguousarray(geometry.orient(plane))

    def __hash__(self) -> int:
        """Hash by folder (for the cache of whole series)."""
        return hash(self.path)

    def __eq__(self, other: object) -> bool:
        """Same folder, same series."""
        return isinstance(other, DicomSeries) and other.path == self.path


@lru_cache(maxsize=1)
def _cached_array(series: DicomSeries) -> np.ndarray:
    return series.read_array()


def is_dicom_folder(path: Path) -> bool:
    """Whether ``path`` is a folder (each folder of a volume directory is read as one DICOM series)."""
    return path.is_dir()


def is_dicom_file(path: Path) -> bool:
    """Whether ``path`` is a file named ``*.dcm`` or starting with the DICOM preamble (``DICM`` at byte 128)."""
    if not path.is_file():
        return False
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def is_series_folder(path: Path) -> bool:
    """Whether ``path`` is a folder whose first file (by name) is a DICOM file: the folder is one series."""
    files = _files(path) if path.is_dir() else []
    return bool(files) and is_dicom_file(files[0])


__all__ = ["DicomSeries", "is_dicom_file", "is_dicom_folder", "is_series_folder", "slice_positions"]
