"""anomalib datamodules of medical images: :class:`MedicalFolder` and the synthetic demo set :class:`SyntheticBrainMRI`.

Both (and the volume datamodules) can hold normal training images out for calibration
(:class:`CalibrationSplitMixin`, ``calibration_split_ratio``).

The volume datamodules (:class:`~anomalib_ea2d.data.volumes.MedicalVolumes`) are in
:mod:`anomalib_ea2d.data.volumes`. Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.data.datamodules.calibration import CalibrationSplitMixin
    from anomalib_ea2d.data.datamodules.medical_folder import MedicalFolder
    from anomalib_ea2d.data.datamodules.synthetic_brain_mri import SyntheticBrainMRI

_EXPORTS = {
    "CalibrationSplitMixin": "anomalib_ea2d.data.datamodules.calibration",
    "MedicalFolder": "anomalib_ea2d.data.datamodules.medical_folder",
    "SyntheticBrainMRI": "anomalib_ea2d.data.datamodules.synthetic_brain_mri",
}

__all__ = ["CalibrationSplitMixin", "MedicalFolder", "SyntheticBrainMRI"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
