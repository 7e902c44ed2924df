"""Finding volumes in a folder and inspecting each once: checks, foreground slices, labels, intensity window.

:func:`inspect_volume` reads a volume (and its mask) once at setup and keeps only a small
:class:`VolumeRecord`: the slicing geometry, the indices of the slices with foreground, a label
per slice and the intensity window. The voxels are dropped again; the dataset reads single
slices later, so memory does not grow with the number of volumes.

Example:
    >>> import tempfile, numpy as np, nibabel as nib
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> data = np.zeros((8, 8, 6), np.float32); data[2:6, 2:6, 1:5] = 100
    >>> nib.save(nib.Nifti1Image(data, np.eye(4)), folder / "a.nii.gz")
    >>> record = inspect_volume(folder / "a.nii.gz", label_index=0, options=SlicingOptions())
    >>> record.slices
    [1, 2, 3, 4]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomalib_ea2d.data.volumes.dicom import DicomSeries, is_series_folder
from anomalib_ea2d.data.volumes.errors import VolumeReadError
from anomalib_ea2d.data.volumes.intensity import (
    Window,
    check_percentiles,
    check_window,
    ct_window,
    percentile_window,
    to_unit,
)
from anomalib_ea2d.data.volumes.nifti import NiftiVolume, is_nifti, nifti_name
from anomalib_ea2d.data.volumes.orientation import Axis, SliceGeometry, check_axis

Volume = NiftiVolume | DicomSeries


@dataclass(frozen=True)
class SlicingOptions:
    """Which slices to take from a volume and how to scale their intensities.

    Args:
        axis: Patient axis the slices are normal to: ``axial``, ``coronal`` or ``sagittal``.
        slice_range: Optional ``(low, high)`` fractions of the foreground's extent along the axis
            (0 = first slice with foreground, 1 = last) to keep, e.g. ``(0.3, 0.8)``.
        min_foreground: Least share of a slice's pixels that must be foreground for it to be used.
        foreground_threshold: Voxels above this value are foreground. Default: the volume's
            minimum (MRI with a zero background), or the CT window's lower edge.
        window: CT window ``(level, width)`` in HU; ``None``: per-volume percentile scaling.
        percentiles: Foreground percentiles mapped to 0 and 1 when ``window`` is ``None``.
    """

    axis: Axis = "axial"
    slice_range: tuple[float, float] | None = None
    min_foreground: float = 0.05
    foreground_threshold: float | None = None
    window: Window | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)

    def __post_init__(self) -> None:
        check_axis(self.axis)
        object.__setattr__(self, "window", check_window(self.window))
        object.__setattr__(self, "percentiles", check_percentiles(self.percentiles))
        if self.slice_range is not None:
            low, high = (float(v) for v in self.slice_range)
            if not 0 <= low < high <= 1:
                msg = f"slice_range must be (low, high) with 0 <= low < high <= 1, got {self.slice_range!r}."
                raise ValueError(msg)
            object.__setattr__(self, "slice_range", (low, high))
        if not 0 <= self.min_foreground < 1:
            msg = f"min_foreground must be in [0, 1), got {self.min_foreground!r}; e.g. min_foreground=0.05."
            raise ValueError(msg)


@dataclass
class VolumeRecord:
    """What the dataset needs to know about one volume; small, no voxels.

    Attributes:
        source: The volume reader.
        label_index: 0 normal, 1 abnormal (from its folder), -1 unknown (prediction).
        geometry: How slices are cut and shown.
        window: Intensity window mapped to ``[0, 1]``.
        slices: Indices of the slices used (foreground, within ``slice_range``).
        slice_labels: Label of each used slice (1 if its mask has a lesion voxel).
        mask: Mask reader, if the volume has a mask.
        name: Name of the output files: the file name without extension, or ``<name>_<n>`` where
            another written volume has that name (set by ``MedicalVolumes``, see :func:`output_names`).
    """

    source: Volume
    label_index: int
    geometry: SliceGeometry
    window: Window
    slices: list[int]
    slice_labels: list[int]
    mask: Volume | None = None
    name: str = field(default="")

    @property
    def path(self) -> Path:
        """The volume's file or series folder."""
        return self.source.path

    def image(self, index: int) -> np.ndarray:
        """Slice ``index`` scaled to ``[0, 1]`` (float32, as shown)."""
        return to_unit(self.source.read_slice(self.geometry, index), self.window)

    def mask_slice(self, index: int) -> np.ndarray:
        """Lesion mask of slice ``index`` (bool; all False without a mask)."""
        if self.mask is None:
            return np.zeros(self.geometry.slice_shape, dtype=bool)
        return self.mask.read_slice(self.geometry, index) > 0


def volume_name(path: Path) -> str:
    """Name of a volume: the file name without ``.nii``/``.nii.gz``, or the series folder's name."""
    return nifti_name(path) if is_nifti(path) else path.name


def open_volume(path: str | Path) -> Volume:
    """Open a NIfTI file or a DICOM series folder (headers only)."""
    path = Path(path)
    if path.is_dir():
        return DicomSeries(path)
    if is_nifti(path):
        return NiftiVolume(path)
    msg = f"{path} is neither a NIfTI file (.nii, .nii.gz) nor a DICOM series folder; move it out of the dataset."
    raise VolumeReadError(msg)


def find_volumes(folder: str | Path) -> list[Path]:
    """NIfTI files and series folders directly inside ``folder`` (other files are ignored), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        msg = f"Volume folder {folder} does not exist; check root and the *_dir arguments."
        raise VolumeReadError(msg)
    found = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_dir() or is_nifti(p)))
    if not found:
        msg = (
            f"Volume folder {folder} holds no volumes; put .nii/.nii.gz files or one folder per DICOM series "
            "in it, or point the argument elsewhere."
        )
        raise VolumeReadError(msg)
    return found


def predict_volumes(path: str | Path) -> list[Path]:
    """Volumes to predict from ``path``: the volume itself (a NIfTI file or a DICOM series folder), else its entries.

    Raises:
        VolumeReadError: If ``path`` is neither a volume nor a folder holding volumes.
    """
    path = Path(path)
    if (path.is_file() and is_nifti(path)) or is_series_folder(path):
        return [path]
    if path.is_file():
        msg = (
            f"{path} is neither a NIfTI file (.nii, .nii.gz) nor a DICOM series folder; pass a volume or a "
            "folder of volumes."
        )
        raise VolumeReadError(msg)
    return find_volumes(path)


def output_names(records: Sequence[VolumeRecord]) -> dict[str, str]:
    """Unique output name of each record, by path: its own volume name wherever possible.

    Records keep their volume names in order; a record whose name an earlier one already holds
    (two inputs with the same stem, e.g. ``a/t1.nii.gz`` and ``b/t1.nii.gz``) gets ``<name>_<n>``,
    with the smallest ``n >= 2`` that is no other volume's name.

    Example:
        >>> from types import SimpleNamespace as Record
        >>> paths = ["a/t1.nii.gz", "b/t1.nii.gz", "b/t1_2.nii.gz"]
        >>> list(output_names([Record(path=Path(p)) for p in paths]).values())
        ['t1', 't1_3', 't1_2']
    """
    own = [volume_name(record.path) for record in records]
    reserved, taken = set(own), set()
    names: dict[str, str] = {}
    for record, own_name in zip(records, own, strict=True):
        name, n = own_name, 1
        while name in taken or (n > 1 and name in reserved):
            n += 1
            name = f"{own_name}_{n}"
        taken.add(name)
        names[str(record.path)] = name
    return names


def _per_slice(values: np.ndarray, geometry: SliceGeometry, reduce: str) -> np.ndarray:
    """Reduce a boolean volume to one value per slice, in slice order."""
    other = tuple(a for a in range(3) if a != geometry.stored_axis)
    per_stored = values.mean(axis=other) if reduce == "mean" else values.any(axis=other)
    return per_stored[::-1] if geometry.flip_slices else per_stored


def _check_finite(data: np.ndarray, path: Path, what: str) -> None:
    bad = ~np.isfinite(data)
    if bad.any():
        msg = (
            f"{what} {path} has {int(bad.sum())} NaN/Inf voxels; replace them (e.g. with the background value, "
            "numpy.nan_to_num) and save it again."
        )
        raise VolumeReadError(msg)


def _same_grid(volume: Volume, mask: Volume) -> None:
    if tuple(volume.shape) != tuple(mask.shape) or not np.allclose(volume.affine, mask.affine, atol=1e-3):
        msg = (
            f"Mask {mask.path} does not share the grid of its volume {volume.path} (shape {tuple(mask.shape)} vs "
            f"{tuple(volume.shape)}, or a different affine); resample the mask onto the volume (nearest neighbour)."
        )
        raise VolumeReadError(msg)


def inspect_volume(
    path: str | Path,
    label_index: int,
    options: SlicingOptions,
    mask_path: str | Path | None = None,
) -> VolumeRecord:
    """Read a volume (and its mask) once, check them, and describe the slices to use.

    Raises:
        VolumeReadError: Unreadable or non-3-D volume, NaN/Inf voxels, no foreground, or a mask on
            another grid; the message names the file and the fix.
    """
    source = open_volume(path)
    geometry = SliceGeometry.from_affine(source.affine, source.shape, options.axis)
    data = source.read_array()
    _check_finite(data, source.path, "Volume")
    if options.window is not None:
        window = ct_window(*options.window)
        threshold = window[0] if options.foreground_threshold is None else options.foreground_threshold
    else:
        threshold = float(data.min()) if options.foreground_threshold is None else options.foreground_threshold
    foreground = data > threshold
    fraction = _per_slice(foreground, geometry, "mean")
    used = np.flatnonzero(fraction > max(options.min_foreground, 0.0))
    if used.size == 0:
        msg = (
            f"Volume {source.path} has no foreground (no slice with more than {options.min_foreground:.0%} of its "
            f"voxels above {threshold:g}); remove it, or lower foreground_threshold / min_foreground."
        )
        raise VolumeReadError(msg)
    if options.slice_range is not None:
        first, last = int(used[0]), int(used[-1])
        low = first + options.slice_range[0] * (last - first)
        high = first + options.slice_range[1] * (last - first)
        used = used[(used >= low - 1e-9) & (used <= high + 1e-9)]
        if used.size == 0:
            msg = f"slice_range {options.slice_range} leaves no slice of {source.path}; widen it."
            raise VolumeReadError(msg)
    if options.window is None:
        window = percentile_window(data[foreground], options.percentiles)
    del data, foreground

    mask = None
    if mask_path is not None:
        mask = open_volume(mask_path)
        _same_grid(source, mask)
        lesion = mask.read_array()
        _check_finite(lesion, mask.path, "Mask")
        has_lesion = _per_slice(lesion > 0, geometry, "any")
        labels = [int(has_lesion[k]) for k in used]
    else:
        labels = [max(label_index, 0)] * len(used)
    return VolumeRecord(
        source=source,
        label_index=label_index,
        geometry=geometry,
        window=window,
        slices=[int(k) for k in used],
        slice_labels=labels,
        mask=mask,
        name=volume_name(source.path),
    )


def index_masks(mask_folders: Sequence[Path]) -> dict[str, Path]:
    """``{volume name: mask}`` of every entry of the mask folders."""
    return {volume_name(path): path for folder in mask_folders for path in find_volumes(folder)}


def mask_of(path: Path, masks: dict[str, Path], mask_folders: Sequence[Path]) -> Path:
    """The mask of abnormal volume ``path`` (same volume name).

    Raises:
        VolumeReadError: If there is none.
    """
    name = volume_name(path)
    if name not in masks:
        msg = (
            f"Abnormal volume {path} has no mask named {name} (.nii/.nii.gz or series folder) in "
            f"{', '.join(str(f) for f in mask_folders)}; add its mask or move the volume out."
        )
        raise VolumeReadError(msg)
    return masks[name]


__all__ = [
    "SlicingOptions",
    "Volume",
    "VolumeRecord",
    "find_volumes",
    "inspect_volume",
    "index_masks",
    "mask_of",
    "open_volume",
    "output_names",
    "predict_volumes",
    "volume_name",
]
