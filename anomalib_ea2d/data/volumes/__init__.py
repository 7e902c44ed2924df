"""Medical volumes for anomalib: NIfTI files and DICOM series in, per-volume scores and NIfTI maps out.

Modules: :mod:`.nifti` and :mod:`.dicom` (lazy readers), :mod:`.orientation` (slicing in the
patient's frame), :mod:`.intensity` (percentile or CT-window scaling), :mod:`.records` (the one
check/inspection pass at setup), :mod:`.dataset` and :mod:`.splits` (slices, splits by volume),
:mod:`.datamodule` (:class:`MedicalVolumes`), :mod:`.synthetic` (:class:`SyntheticBrainVolumes`, the
demo). What a test or predict run writes per volume is the callback
:class:`~anomalib_ea2d.callbacks.volume_results.VolumeResults`, re-exported here; the overlay picture
of a map on its volume is :mod:`anomalib_ea2d.visualization.volume_overlay`. Attributes are imported on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.callbacks.volume_results import VolumeResults
    from anomalib_ea2d.data.volumes.datamodule import MedicalVolumes
    from anomalib_ea2d.data.volumes.errors import VolumeReadError
    from anomalib_ea2d.data.volumes.synthetic import SyntheticBrainVolumes

_EXPORTS = {
    "MedicalVolumes": "anomalib_ea2d.data.volumes.datamodule",
    "SyntheticBrainVolumes": "anomalib_ea2d.data.volumes.synthetic",
    "VolumeReadError": "anomalib_ea2d.data.volumes.errors",
    "VolumeResults": "anomalib_ea2d.callbacks.volume_results",
}

__all__ = ["MedicalVolumes", "SyntheticBrainVolumes", "VolumeReadError", "VolumeResults"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
