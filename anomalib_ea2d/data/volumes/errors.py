"""The one error type of the volume readers: an unusable volume, with a message naming the file and the fix."""

from __future__ import annotations


class VolumeReadError(ValueError):
    """A volume, mask or DICOM series that cannot be used; the message names the file and the fix.

    Example:
        >>> str(VolumeReadError("scan.nii.gz is 2-D; save it as a 3-D volume."))
        'scan.nii.gz is 2-D; save it as a 3-D volume.'
    """


def describe(error: BaseException) -> str:
    """``Type: message`` of a library error on one line, for quoting inside our messages."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


__all__ = ["VolumeReadError", "describe"]
