"""Medical volumes for anomalib: NIfTI files and DICOM series in, per-volume scores and NIfTI maps out.

Modules: :mod:`.nifti` and :mod:`.dicom` (lazy readers), :mod:`.orientation` (slicing in the
patient's frame), :mod:`.intensity` (percentile or CT-window scaling), :mod:`.records` (the one
check/inspection pass at setup), :mod:`.dataset` and :mod:`.splits` (slices, splits by volume),
:mod:`.datamodule` (:class:`MedicalVolumes`), :mod:`.results` (:class:`VolumeResults`),
:mod:`.synthetic` (:class:`SyntheticBrainVolumes`, the demo).
"""

from anomalib_ea2d.data.volumes.datamodule import MedicalVolumes
from anomalib_ea2d.data.volumes.errors import VolumeReadError
from anomalib_ea2d.data.volumes.results import VolumeResults
from anomalib_ea2d.data.volumes.synthetic import SyntheticBrainVolumes

__all__ = ["MedicalVolumes", "SyntheticBrainVolumes", "VolumeReadError", "VolumeResults"]
