"""Generators of the synthetic brain-MRI sets (MNI152 anatomy, simulated subjects, synthetic lesions).

Modules: ``synthetic_brain`` (2-D axial slices: :func:`generate_synthetic_brain`) and
``synthetic_brain_volumes`` (NIfTI volumes: :func:`generate_synthetic_brain_volumes`), sharing
``anatomy`` (the template and each subject's deformation), ``lesions`` (the lesion painting, 2-D and
3-D) and ``cache`` (parameters, manifest, cache check, the swap of a finished set into place).
The lesions are a software test signal, not a model of any disease. Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.data.generators.synthetic_brain import SyntheticBrainParams, generate_synthetic_brain
    from anomalib_ea2d.data.generators.synthetic_brain_volumes import (
        SyntheticVolumeParams,
        generate_synthetic_brain_volumes,
    )

_EXPORTS = {
    "SyntheticBrainParams": "anomalib_ea2d.data.generators.synthetic_brain",
    "generate_synthetic_brain": "anomalib_ea2d.data.generators.synthetic_brain",
    "SyntheticVolumeParams": "anomalib_ea2d.data.generators.synthetic_brain_volumes",
    "generate_synthetic_brain_volumes": "anomalib_ea2d.data.generators.synthetic_brain_volumes",
}

__all__ = [
    "SyntheticBrainParams",
    "SyntheticVolumeParams",
    "generate_synthetic_brain",
    "generate_synthetic_brain_volumes",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
