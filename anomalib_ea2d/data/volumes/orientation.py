"""Slicing a volume in the patient's frame: which array axis is axial/coronal/sagittal, and how a slice is shown.

A volume's affine maps voxel indices to RAS+ world millimetres (NIfTI's convention; DICOM series
are converted to it by :mod:`~anomalib_ea2d.data.volumes.dicom`). :class:`SliceGeometry` finds,
from the affine alone, the stored array axis closest to the requested patient axis and the
direction of every axis, so a volume stored LPS, with permuted axes or flipped gives the same
slices (same index, same pixels) as its RAS copy. Oblique acquisitions are sliced along the
nearest array axis (no resampling).

Slices are numbered along the patient axis in increasing world coordinate (inferior→superior,
posterior→anterior, left→right) and shown in the neurological view: superior/anterior up, the
patient's right on the image's right (axial and coronal), anterior on the right (sagittal).
:meth:`SliceGeometry.read` and :meth:`SliceGeometry.write` are exact inverses, which is how
per-slice anomaly maps are put back into the input's voxel grid.

Example:
    >>> import numpy as np
    >>> ras = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    >>> lps = ras[::-1, ::-1, :]                   # the same image stored LPS
    >>> affine_lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    >>> a = SliceGeometry.from_affine(np.eye(4), ras.shape, "axial")
    >>> b = SliceGeometry.from_affine(affine_lps, lps.shape, "axial")
    >>> bool(np.array_equal(a.read(ras, 1), b.read(lps, 1)))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import nibabel as nib
import numpy as np

Axis = Literal["axial", "coronal", "sagittal"]
AXES: tuple[str, ...] = ("axial", "coronal", "sagittal")

_NORMAL_OF_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # RAS world axis each slice is normal to
# Canonical (world) axes of the image's rows and columns, and whether the row order is reversed so
# that superior/anterior is at the top.
_IN_PLANE = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}


def check_axis(axis: str) -> Axis:
    """Return ``axis`` if it is one of ``axial``, ``coronal``, ``sagittal``; raise otherwise."""
    if axis not in AXES:
        msg = f"axis must be one of {AXES}, got {axis!r}; pass e.g. axis='axial' (--data.axis axial)."
        raise ValueError(msg)
    return axis  # type: ignore[return-value]


@dataclass(frozen=True)
class SliceGeometry:
    """How to cut slices along one patient axis out of a stored 3-D array.

    Attributes:
        shape: Shape of the stored array.
        axis: Patient axis the slices are normal to.
        stored_axis: Array axis that runs along the slice normal.
        flip_slices: Whether slice ``k`` is stored at ``n - 1 - k`` (the array runs against the world axis).
        row_axis: Array axis of the image rows (shown top = superior/anterior).
        col_axis: Array axis of the image columns.
        flip_rows: Whether the rows are read in decreasing array index.
        flip_cols: Whether the columns are read in decreasing array index.
    """

    shape: tuple[int, int, int]
    axis: Axis
    stored_axis: int
    flip_slices: bool
    row_axis: int
    col_axis: int
    flip_rows: bool
    flip_cols: bool

    @classmethod
    def from_affine(cls, affine: np.ndarray, shape: tuple[int, ...], axis: str) -> SliceGeometry:
        """Geometry of ``axis`` slices of an array of ``shape`` whose voxel→RAS affine is ``affine``."""
        axis = check_axis(axis)
        ornt = nib.orientations.io_orientation(np.asarray(affine, dtype=np.float64))
        world_to_stored = {int(world): (stored, bool(flip < 0)) for stored, (world, flip) in enumerate(ornt)}
        normal = _NORMAL_OF_AXIS[axis]
        stored_axis, flip_slices = world_to_stored[normal]
        row_world, col_world = _IN_PLANE[axis]
        row_axis, row_flip = world_to_stored[row_world]
        col_axis, col_flip = world_to_stored[col_world]
        # Rows: superior/anterior at the top, i.e. decreasing world coordinate down the image.
        return cls(
            shape=tuple(int(s) for s in shape[:3]),  # type: ignore[arg-type]
            axis=axis,
            stored_axis=stored_axis,
            flip_slices=flip_slices,
            row_axis=row_axis,
            col_axis=col_axis,
            flip_rows=not row_flip,
            flip_cols=col_flip,
        )

    @property
    def num_slices(self) -> int:
        """Number of slices along the axis."""
        return self.shape[self.stored_axis]

    @property
    def slice_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of one slice as shown."""
        return self.shape[self.row_axis], self.shape[self.col_axis]

    def stored_index(self, index: int) -> int:
        """Array index along :attr:`stored_axis` of slice ``index``."""
        if not 0 <= index < self.num_slices:
            msg = f"Slice {index} is outside the volume's {self.num_slices} {self.axis} slices."
            raise IndexError(msg)
        return self.num_slices - 1 - index if self.flip_slices else index

    def slicer(self, index: int) -> tuple[int | slice, ...]:
        """Index tuple selecting slice ``index`` from the stored array (works on nibabel proxies)."""
        key: list[int | slice] = [slice(None)] * 3
        key[self.stored_axis] = self.stored_index(index)
        return tuple(key)

    def orient(self, plane: np.ndarray) -> np.ndarray:
        """Turn the 2-D array that :meth:`slicer` cut out into the slice as shown."""
        remaining = [a for a in range(3) if a != self.stored_axis]
        view = plane if remaining.index(self.row_axis) == 0 else plane.T
        if self.flip_rows:
            view = view[::-1, :]
        if self.flip_cols:
            view = view[:, ::-1]
        return view

    def unorient(self, image: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`orient`: a shown slice back in the stored array's in-plane order."""
        view = image
        if self.flip_cols:
            view = view[:, ::-1]
        if self.flip_rows:
            view = view[::-1, :]
        remaining = [a for a in range(3) if a != self.stored_axis]
        return view if remaining.index(self.row_axis) == 0 else view.T

    def read(self, array: np.ndarray, index: int) -> np.ndarray:
        """Slice ``index`` of ``array`` (an array or a nibabel proxy) as shown."""
        return self.orient(np.asarray(array[self.slicer(index)]))

    def write(self, array: np.ndarray, index: int, image: np.ndarray) -> None:
        """Store the shown slice ``image`` as slice ``index`` of ``array`` (inverse of :meth:`read`)."""
        array[self.slicer(index)] = self.unorient(image)


__all__ = ["AXES", "Axis", "SliceGeometry", "check_axis"]
