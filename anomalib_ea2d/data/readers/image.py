"""Read medical images (8/16-bit, grayscale, colour, float TIFF) into anomalib's RGB float tensors.

anomalib's :func:`~anomalib.data.utils.read_image` converts every file with Pillow's
``convert("RGB")``, which clips 16-bit and float images to 0..255: a 16-bit X-ray or microscopy
image becomes mostly white, silently. :func:`read_medical_image` keeps the full range instead:

* 8-bit files (grayscale, palette, RGB, RGBA, CMYK, ...) give exactly what anomalib's reader gives:
  Pillow's RGB conversion divided by 255 (alpha is dropped, CMYK converted by Pillow).
* 16-bit files (PNG, TIFF, PGM; grayscale or colour) are divided by 65535, the range of the data
  type (``intensity_scaling="dtype"``, the default), so one intensity means the same on every image.
* Float TIFFs are used as they are if all values lie in ``[0, 1]``.
* ``intensity_scaling="minmax"`` instead maps each image's own minimum..maximum to 0..1 (a
  constant image becomes all zeros); use it for signed or 32-bit integer data, float data outside
  ``[0, 1]``, or 12-bit data stored in 16-bit files that would look dark under ``"dtype"``. It
  removes absolute intensity differences between images, which may themselves be anomalies.

Grayscale is repeated to three channels. TIFFs are read with ``tifffile`` (first page only), other
formats with Pillow, 16-bit colour PNGs with OpenCV. Whatever goes wrong is raised as
:class:`ImageReadError` naming the file, so a corrupt file deep in a large folder is easy to find;
:func:`find_bad_images` checks many files at once (the datamodules do this at setup).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import tifffile
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms.v2.functional import to_dtype, to_image

logger = logging.getLogger(__name__)

IntensityScaling = Literal["dtype", "minmax"]
INTENSITY_SCALINGS: tuple[str, ...] = ("dtype", "minmax")
TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
_PIL_HIGH_DEPTH_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
_TIFF_MAGIC = {b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"}


class ImageReadError(ValueError):
    """An image or mask file cannot be used; the message names the file, the problem and the fix."""


def check_intensity_scaling(intensity_scaling: str) -> IntensityScaling:
    """Return ``intensity_scaling`` if it is ``"dtype"`` or ``"minmax"``, else raise a ``ValueError``.

    Example:
        >>> check_intensity_scaling("minmax")
        'minmax'
    """
    if intensity_scaling not in INTENSITY_SCALINGS:
        msg = f"intensity_scaling must be one of {INTENSITY_SCALINGS}, got {intensity_scaling!r}."
        raise ValueError(msg)
    return intensity_scaling  # type: ignore[return-value]


def _rawmode(image: Image.Image) -> str:
    """Pillow's raw mode of the first tile (``RGB;16B`` for a 16-bit colour PNG), or ``""``."""
    if not image.tile:
        return ""
    args = image.tile[0].args
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _decode_tiff(path: Path) -> np.ndarray:
    """First image series of a TIFF as ``[H, W]`` or ``[H, W, C]`` in its stored data type.

    A series with more than two spatial/channel dimensions (a volume, a time series, several
    channels plus samples) is refused rather than silently cut to its first slice.
    """
    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        axes, shape = series.axes, tuple(series.shape)
        extra = [f"{axis}={size}" for axis, size in zip(axes, shape, strict=True) if axis not in "YXSC" and size > 1]
        channels = [axis for axis, size in zip(axes, shape, strict=True) if axis in "SC" and size > 1]
        if extra or len(channels) > 1:
            msg = (
                f"Image {path} is a TIFF with more than one 2-D image (axes {axes}, shape {shape}); "
                "save each 2-D slice or frame as its own file."
            )
            raise ImageReadError(msg)
        array = series.asarray()
    keep = [index for index, axis in enumerate(axes) if axis in "YX" or (axis in "SC" and shape[index] > 1)]
    array = array.reshape([shape[index] for index in keep])
    kept_axes = "".join(axes[index] for index in keep).replace("C", "S")
    return array.transpose([kept_axes.index(axis) for axis in "YXS" if axis in kept_axes])


def _decode_with_pillow(path: Path) -> np.ndarray | tv_tensors.Image:
    """Pillow decode: 8-bit data as anomalib's float RGB image, deeper data as a numpy array."""
    with Image.open(path) as image:
        rawmode = _rawmode(image)  # read before load(), which clears the tiles
        image.load()  # decodes the whole file now: a truncated file fails here, with its name added by the caller
        if image.mode in _PIL_HIGH_DEPTH_MODES:
            array = np.array(image)
            if image.mode == "I" and rawmode.startswith("I;16"):  # 16-bit data Pillow widened (e.g. 16-bit PGM)
                array = array.astype(np.uint16)
            return array
        if ";16" in rawmode:  # 16-bit colour PNG: Pillow keeps only 8 bits per channel
            array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if array is None:
                msg = "OpenCV could not decode the 16-bit colour data"
                raise OSError(msg)
            return cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA if array.shape[-1] == 4 else cv2.COLOR_BGR2RGB)
        return to_dtype(to_image(image.convert("RGB")), torch.float32, scale=True)


def _is_tiff(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(4) in _TIFF_MAGIC


def _decode(path: Path) -> np.ndarray | tv_tensors.Image:
    if path.suffix.lower() in TIFF_SUFFIXES and _is_tiff(path):
        return _decode_tiff(path)
    return _decode_with_pillow(path)  # also a misnamed non-TIFF ``.tif``: Pillow may know its format


def _channels_last_rgb(array: np.ndarray, path: Path) -> np.ndarray:
    """``[H, W]`` or ``[H, W, C]`` (C = 1..4) -> ``[H, W, 3]`` (gray repeated, alpha dropped)."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=-1)
    if array.ndim == 3 and array.shape[-1] in {2, 3, 4}:
        return np.repeat(array[..., :1], 3, axis=-1) if array.shape[-1] == 2 else array[..., :3]
    msg = (
        f"Image {path} has shape {array.shape}, not a 2-D grayscale or colour image; "
        "save each slice or frame as its own 2-D file."
    )
    raise ImageReadError(msg)


def _scale(array: np.ndarray, intensity_scaling: IntensityScaling, path: Path) -> np.ndarray:
    """Map the stored values to float32 in ``[0, 1]`` as documented in the module docstring."""
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        count = int((~np.isfinite(array)).sum())
        msg = f"Image {path} contains {count} NaN/Inf pixels; replace them (e.g. with numpy.nan_to_num) in the file."
        raise ImageReadError(msg)
    if intensity_scaling == "minmax":
        values = array.astype(np.float64)
        low, high = values.min(), values.max()
        return ((values - low) / (high - low) if high > low else np.zeros_like(values)).astype(np.float32)
    if np.issubdtype(array.dtype, np.unsignedinteger) and array.dtype.itemsize <= 2:
        return (array.astype(np.float32) / np.iinfo(array.dtype).max).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        low, high = float(array.min()), float(array.max())
        if low >= 0.0 and high <= 1.0:
            return array.astype(np.float32)
        msg = (
            f"Image {path} holds floats in [{low:g}, {high:g}], and intensity_scaling='dtype' uses floats only in "
            "[0, 1]; rescale the file to [0, 1] or pass intensity_scaling='minmax' (per-image min..max)."
        )
        raise ImageReadError(msg)
    msg = (
        f"Image {path} holds {array.dtype} data, which has no standard intensity range (only 8/16-bit unsigned "
        "integers and floats in [0, 1] do); convert the file to 16-bit unsigned or pass intensity_scaling='minmax'."
    )
    raise ImageReadError(msg)


def read_medical_image(path: str | Path, intensity_scaling: IntensityScaling = "dtype") -> tv_tensors.Image:
    """Read an image file as a ``[3, H, W]`` float32 RGB image in ``[0, 1]`` without clipping deep data.

    Args:
        path: Image file (PNG, JPEG, TIFF, BMP, PGM, ... anything Pillow or tifffile reads).
        intensity_scaling: ``"dtype"`` (default): divide integers by their type's maximum (255,
            65535), keep floats in ``[0, 1]``; ``"minmax"``: each image's own min..max -> 0..1.

    Returns:
        The image as a torchvision ``Image`` tensor, like anomalib's ``read_image(path, as_tensor=True)``.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ImageReadError: If the file is truncated, corrupt, not an image, not 2-D, or its values
            do not fit ``intensity_scaling``; the message names the file.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> path = Path(tempfile.mkdtemp()) / "xray.png"
        >>> Image.fromarray(np.full((4, 6), 32768, np.uint16)).save(path)
        >>> image = read_medical_image(path)
        >>> tuple(image.shape), round(float(image.max()), 3)
        ((3, 4, 6), 0.5)
    """
    path = Path(path)
    scaling = check_intensity_scaling(intensity_scaling)
    if not path.is_file():
        msg = f"Image file {path} does not exist; check the dataset path or remove the entry that refers to it."
        raise FileNotFoundError(msg)
    try:
        decoded = _decode(path)
    except ImageReadError:
        raise
    except Exception as error:  # decoders raise many types; all mean "unusable file"
        msg = (
            f"Could not read image {path} ({type(error).__name__}: {error}); the file is truncated, corrupt or "
            "not an image: re-export or remove it."
        )
        raise ImageReadError(msg) from error
    if isinstance(decoded, torch.Tensor):  # 8-bit data, already anomalib's float RGB
        if scaling == "minmax":
            low, high = decoded.min(), decoded.max()
            decoded = (decoded - low) / (high - low) if high > low else torch.zeros_like(decoded)
        return tv_tensors.Image(decoded)
    rgb = _channels_last_rgb(_scale(decoded, scaling, path), path)
    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))))


def read_medical_mask(path: str | Path) -> tv_tensors.Mask:
    """Read a mask file of any bit depth as a ``[H, W]`` uint8 mask: 1 where any channel is > 0.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        ImageReadError: If the file cannot be decoded; the message names the file.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> path = Path(tempfile.mkdtemp()) / "mask.png"
        >>> Image.fromarray(np.eye(3, dtype=np.uint16) * 65535).save(path)
        >>> read_medical_mask(path).sum().item()
        3
    """
    path = Path(path)
    if not path.is_file():
        msg = f"Mask file {path} does not exist; add the mask or check mask_dir."
        raise FileNotFoundError(msg)
    try:
        decoded = _decode(path)
    except Exception as error:  # decoders raise many types; all mean "unusable file"
        msg = f"Could not read mask {path} ({type(error).__name__}: {error}); the file is truncated or corrupt."
        raise ImageReadError(msg) from error
    array = decoded.numpy().max(axis=0) if isinstance(decoded, torch.Tensor) else np.asarray(decoded)
    if array.ndim == 3:
        array = array.max(axis=-1)
    if array.ndim != 2:
        msg = f"Mask {path} has shape {array.shape}, not a 2-D mask; save it as one 2-D image."
        raise ImageReadError(msg)
    return tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(array > 0)).to(torch.uint8))


def _problem(image_path: Path, mask_path: Path | None, intensity_scaling: IntensityScaling) -> str | None:
    """Why this sample cannot be used, or ``None`` if its image (and mask) read fine and fit together."""
    try:
        image = read_medical_image(image_path, intensity_scaling)
        if mask_path is None:
            return None
        mask = read_medical_mask(mask_path)
    except (ImageReadError, FileNotFoundError) as error:
        return str(error)
    if tuple(mask.shape) != tuple(image.shape[-2:]):
        return (
            f"Mask {mask_path} is {tuple(mask.shape)} but image {image_path} is {tuple(image.shape[-2:])}; "
            "a mask must have its image's height and width."
        )
    return None


def find_bad_images(
    image_paths: Sequence[str | Path],
    mask_paths: Sequence[str | Path | None] | None = None,
    intensity_scaling: IntensityScaling = "dtype",
    num_threads: int | None = None,
) -> dict[str, str]:
    """Fully read every image (and its mask) and report the ones that cannot be used.

    Every file is decoded completely, so truncated files are found too (a header check would miss
    truncated JPEGs); this costs about one pass over the data, spread over ``num_threads`` threads.

    Args:
        image_paths: Image files.
        mask_paths: Optional mask file per image (``None`` or empty for none).
        intensity_scaling: As in :func:`read_medical_image`.
        num_threads: Decoding threads; default ``min(8, CPU count)``.

    Returns:
        ``{image path: problem}`` for every unusable sample, in input order (empty if all are fine).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "notes.png").write_text("not an image")
        12
        >>> list(find_bad_images([folder / "notes.png"]))  # doctest: +ELLIPSIS
        ['.../notes.png']
    """
    scaling = check_intensity_scaling(intensity_scaling)
    masks: list[Path | None] = [
        Path(m) if m not in {None, ""} and not (isinstance(m, float) and np.isnan(m)) else None
        for m in (mask_paths if mask_paths is not None else [None] * len(image_paths))
    ]
    if len(masks) != len(image_paths):
        msg = f"find_bad_images got {len(image_paths)} images but {len(masks)} masks; pass one mask entry per image."
        raise ValueError(msg)
    threads = num_threads or min(8, os.cpu_count() or 1)
    images = [Path(p) for p in image_paths]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        problems = list(pool.map(lambda pair: _problem(pair[0], pair[1], scaling), zip(images, masks, strict=True)))
    return {str(path): problem for path, problem in zip(images, problems, strict=True) if problem is not None}


def describe_bad_images(bad: dict[str, str], total: int, what: str, limit: int = 10) -> str:
    """One message listing up to ``limit`` unusable files with their problems and how many there are."""
    shown = "; ".join(problem.rstrip(".") for problem in list(bad.values())[:limit])
    more = f"; ... and {len(bad) - limit} more (all listed in the log)" if len(bad) > limit else ""
    return f"{len(bad)} of {total} images of {what} cannot be used: {shown}{more}"


def log_bad_images(bad: dict[str, str], what: str) -> None:
    """Log every unusable file, one per line, at warning level."""
    for path, problem in bad.items():
        logger.warning("%s: unusable image %s: %s", what, path, problem)


__all__ = [
    "INTENSITY_SCALINGS",
    "ImageReadError",
    "IntensityScaling",
    "check_intensity_scaling",
    "describe_bad_images",
    "find_bad_images",
    "read_medical_image",
    "read_medical_mask",
]
