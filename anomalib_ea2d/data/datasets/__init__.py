"""anomalib datasets of medical images: :class:`MedicalFolderDataset` and :class:`MedicalPredictDataset`.

The volume slices' dataset is :class:`~anomalib_ea2d.data.volumes.dataset.VolumeSliceDataset`.
Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.data.datasets.medical_folder import MedicalFolderDataset, MedicalPredictDataset

_EXPORTS = {
    "MedicalFolderDataset": "anomalib_ea2d.data.datasets.medical_folder",
    "MedicalPredictDataset": "anomalib_ea2d.data.datasets.medical_folder",
}

__all__ = ["MedicalFolderDataset", "MedicalPredictDataset"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
