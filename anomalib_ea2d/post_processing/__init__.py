"""Post-processing for any anomalib model: :class:`SpecificityPostProcessor` (``specificity_post_processor``).

Its thresholds flag a chosen fraction of the *normal* validation images and pixels: the operating
point at a specificity, as clinical users choose it. Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.post_processing.specificity_post_processor import (
        MAX_CALIBRATION_PIXELS,
        SpecificityPostProcessor,
        threshold_at_fpr,
    )

_EXPORTS = {
    "MAX_CALIBRATION_PIXELS": "anomalib_ea2d.post_processing.specificity_post_processor",
    "SpecificityPostProcessor": "anomalib_ea2d.post_processing.specificity_post_processor",
    "threshold_at_fpr": "anomalib_ea2d.post_processing.specificity_post_processor",
}

__all__ = ["MAX_CALIBRATION_PIXELS", "SpecificityPostProcessor", "threshold_at_fpr"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
