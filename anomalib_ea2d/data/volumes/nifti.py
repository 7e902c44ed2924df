"""Lazy NIfTI volumes (``.nii``/``.nii.gz``) through nibabel's array proxies.

:class:`NiftiVolume` keeps only the path, shape and affine; every read re-opens the file and
slices nibabel's array proxy, so an uncompressed ``.nii`` is memory-mapped and only the
requested slice is read. For ``.nii.gz`` nibabel seeks in the compressed stream; with
``indexed_gzip`` (installed with this package) and the file kept open, it remembers seek points
as it goes, so later slices of the same file cost a short decompression instead of one from the
file's start. Each process therefore keeps the
last :data:`MAX_OPEN_FILES` volumes open (a bounded cache: memory and file handles do not grow
with the number of volumes). The NIfTI scale factors (``scl_slope``/``scl_inter``) are applied.

Example:
    >>> import tempfile, numpy as np, nibabel as nib
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "scan.nii.gz"
    >>> nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), np.eye(4)), path)
    >>> volume = NiftiVolume(path)
    >>> volume.shape, volume.name
    ((4, 5, 6), 'scan')
"""

from __future__ import annotations

import os
import threading
import zlib
from collections import OrderedDict
from pathlib import Path

import nibabel as nib
import numpy as np

from anomalib_ea2d.data.volumes.errors import VolumeReadError, describe
from anomalib_ea2d.data.volumes.orientation import SliceGeometry

NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")
MAX_OPEN_FILES = 64
"""Volumes kept open per process (least recently used ones are closed)."""

_open: OrderedDict[tuple[Path, int, int], nib.Nifti1Image] = OrderedDict()
_open_pid = os.getpid()
_open_lock = threading.Lock()


def _cached_load(path: Path) -> nib.Nifti1Image:
    """``nib.load`` with the file kept open, from a per-process LRU cache (forked workers start empty)."""
    global _open_pid  # noqa: PLW0603
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)  # a rewritten file is opened afresh
    with _open_lock:
        if _open_pid != os.getpid():  # a forked worker must not share the parent's file positions
            _open.clear()
            _open_pid = os.getpid()
        image = _open.get(key)
        if image is not None:
            _open.move_to_end(key)
            return image
    image = nib.load(path, keep_file_open=True)
    with _open_lock:
        _open[key] = image
        while len(_open) > MAX_OPEN_FILES:
            _open.popitem(last=False)
    return image


def is_nifti(path: Path) -> bool:
    """Whether ``path`` is named like a NIfTI file."""
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def nifti_name(path: Path) -> str:
    """File name without ``.nii``/``.nii.gz``."""
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class NiftiVolume:
    """A 3-D NIfTI volume read lazily, one slice at a time.

    Args:
        path: ``.nii`` or ``.nii.gz`` file.

    Raises:
        VolumeReadError: If the file cannot be opened, or is not 3-D (a 4-D file with a single
            volume, shape ``(x, y, z, 1)``, is accepted).
    """

    kind = "nifti"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = nifti_name(self.path)
        image = self._load()
        shape = tuple(int(s) for s in image.shape)
        if len(shape) == 4 and shape[3] == 1:
            self._extra: tuple[int, ...] = (0,)
        elif len(shape) != 3:
            msg = (
                f"NIfTI file {self.path} has shape {shape}, not a 3-D volume; save each 3-D volume in its own "
                "file (e.g. split a 4-D series with fslsplit or nibabel.funcs.four_to_three)."
            )
            raise VolumeReadError(msg)
        else:
            self._extra = ()
        self.shape: tuple[int, int, int] = shape[:3]  # type: ignore[assignment]
        self.affine = np.asarray(image.affine, dtype=np.float64)
        if not np.isfinite(self.affine).all() or abs(np.linalg.det(self.affine[:3, :3])) < 1e-12:
            msg = f"NIfTI file {self.path} has an invalid affine (singular or not finite); fix its sform/qform."
            raise VolumeReadError(msg)

    def _load(self) -> nib.Nifti1Image:
        if not self.path.is_file():
            msg = f"Volume {self.path} does not exist; check the dataset path."
            raise VolumeReadError(msg)
        try:
            return _cached_load(self.path)
        except Exception as error:  # nibabel raises many types for unreadable files
            msg = (
                f"Could not open NIfTI file {self.path} ({describe(error)}); the file is corrupt or "
                "not NIfTI: re-export or remove it."
            )
            raise VolumeReadError(msg) from error

    def _read(self, key: tuple[int | slice, ...]) -> np.ndarray:
        try:
            return np.asarray(self._load().dataobj[(*key, *self._extra)], dtype=np.float32)
        except VolumeReadError:
            raise
        except (OSError, EOFError, ValueError, zlib.error) as error:
            msg = (
                f"Could not read the voxels of {self.path} ({describe(error)}); the file is truncated "
                "or corrupt: re-export or remove it."
            )
            raise VolumeReadError(msg) from error

    def read_array(self) -> np.ndarray:
        """The whole volume as float32 (stored axis order)."""
        return self._read((slice(None),) * 3)

    def read_slice(self, geometry: SliceGeometry, index: int) -> np.ndarray:
        """Slice ``index`` of ``geometry`` as float32, as shown (see :class:`SliceGeometry`)."""
        return np.ascontiguousarray(geometry.orient(self._read(geometry.slicer(index))))


__all__ = ["NIFTI_SUFFIXES", "NiftiVolume", "is_nifti", "nifti_name"]
