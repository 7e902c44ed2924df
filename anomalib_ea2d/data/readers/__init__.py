"""Reading medical files for anomalib: images, masks, and the paths given to ``anomalib predict --data``.

Modules: ``image`` (:func:`read_medical_image`, :func:`read_medical_mask`: 16-bit and float images
keep their range; the check of every file at setup), ``mask_pairing`` (masks paired with their
images by name), ``predict`` (``Engine.predict(data_path=...)`` of a model that opts in: images
through :class:`~anomalib_ea2d.data.MedicalPredictDataset`, volumes through
:class:`~anomalib_ea2d.data.volumes.MedicalVolumes`). The volume readers (NIfTI, DICOM) are in
:mod:`anomalib_ea2d.data.volumes`. Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.data.readers.image import ImageReadError, read_medical_image, read_medical_mask

_EXPORTS = {
    "ImageReadError": "anomalib_ea2d.data.readers.image",
    "read_medical_image": "anomalib_ea2d.data.readers.image",
    "read_medical_mask": "anomalib_ea2d.data.readers.image",
}

__all__ = ["ImageReadError", "read_medical_image", "read_medical_mask"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
