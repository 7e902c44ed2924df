"""Pair mask files with abnormal images by name, so that a missing mask is reported as such.

anomalib's ``make_folder_dataset`` pairs the sorted abnormal images with the sorted masks by position;
when one mask is missing it fails inside pandas (``ValueError: NumPy boolean array indexing
assignment cannot assign 3 input values to the 4 output values``). :func:`pair_masks` gives the same
pairs wherever anomalib's pairing works, and otherwise pairs by file name, so that
:class:`~anomalib_ea2d.data.datamodules.medical_folder.MedicalFolder` can report the image whose mask is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from anomalib.data.utils.path import validate_and_resolve_path
from torchvision.datasets.folder import IMG_EXTENSIONS


def resolve_folders(folders: str | Path | Sequence[str | Path], root: str | Path | None) -> list[Path]:
    """One folder or several, resolved against ``root`` as anomalib's ``Folder`` resolves them."""
    items = [folders] if isinstance(folders, str | Path) else list(folders)
    return [validate_and_resolve_path(folder, root) for folder in items]


def list_masks(
    mask_dir: str | Path | Sequence[str | Path], root: str | Path | None, extensions: tuple[str, ...] | None
) -> list[Path]:
    """Mask files under ``mask_dir``, found and sorted as anomalib's ``make_folder_dataset`` finds them."""
    suffixes = tuple(extension.lower() for extension in (extensions or IMG_EXTENSIONS))
    masks: list[Path] = []
    for folder in resolve_folders(mask_dir, root):
        found = [path for path in folder.glob("**/*") if path.suffix.lower() in suffixes and not path.is_dir()]
        if not found:
            msg = (
                f"mask_dir {folder} holds no mask files with extensions {suffixes}; add the masks, or leave "
                "mask_dir out to train and test without pixel-level labels."
            )
            raise ValueError(msg)
        masks += found
    return sorted(masks)


def pair_masks(images: Sequence[str | Path], masks: Sequence[Path], mask_dir: Path) -> list[str]:
    """The mask file of each abnormal image: anomalib's pairing where it works, else by file name.

    anomalib pairs the sorted images with the sorted masks by position (each mask's name containing
    its image's name). Where that fails, e.g. because one mask is missing, each image gets the one
    mask whose name stem equals (or else contains) its own; an image without one gets the path its
    mask would have, ``mask_dir/<image file name>``, which does not exist, so that reading it
    reports "Mask file ... does not exist; add the mask or check mask_dir".

    Example:
        >>> masks = [Path("gt/001.png"), Path("gt/003.png")]
        >>> pair_masks(["bad/001.png", "bad/002.png", "bad/003.png"], masks, Path("gt"))
        ['gt/001.png', 'gt/002.png', 'gt/003.png']
    """
    images = [Path(image) for image in images]
    if len(images) == len(masks) and all(image.stem in mask.stem for image, mask in zip(images, masks, strict=True)):
        return [str(mask) for mask in masks]
    paired = []
    for image in images:
        candidates = [mask for mask in masks if mask.stem == image.stem] or [
            mask for mask in masks if image.stem in mask.stem
        ]
        expected = mask_dir / image.name
        paired.append(str(candidates[0] if len(candidates) == 1 and not expected.is_file() else expected))
    return paired


__all__ = ["list_masks", "pair_masks", "resolve_folders"]
