"""Lightning callbacks that work with any anomalib model; none of them imports EA2D.

- ``roi``: :class:`RegionOfInterest` (anomaly maps limited to the anatomy) and its :class:`Foreground` mask;
- ``guards``: :class:`NumericsGuard`, :class:`ValidateAfterTraining`, :class:`CalibrationGuard` (and
  the export check :class:`WarnUncalibratedExport`);
- ``raw_predictions``: :class:`RawPredictions` (raw scores kept before the post-processor);
- ``image_scores``: :class:`ImageScores` (``image_scores.csv``);
- ``volume_results``: :class:`VolumeResults` (per-volume scores and NIfTI maps of ``MedicalVolumes``);
- ``encoder_pretraining``: :class:`EncoderPretraining` (an in-domain pretraining phase for a model's encoder
  before its training, from the training set's normal images).

The run report (:class:`~anomalib_ea2d.RunReport`) is a callback too; it draws, so it lives in
:mod:`anomalib_ea2d.visualization`, as anomalib's visualiser does. Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.callbacks.encoder_pretraining import EncoderPretraining, PretrainableEncoder
    from anomalib_ea2d.callbacks.guards import (
        CalibrationGuard,
        NumericsGuard,
        UncalibratedModelError,
        ValidateAfterTraining,
        WarnUncalibratedExport,
    )
    from anomalib_ea2d.callbacks.image_scores import ImageScores
    from anomalib_ea2d.callbacks.raw_predictions import RawPredictions
    from anomalib_ea2d.callbacks.roi import Foreground, RegionOfInterest
    from anomalib_ea2d.callbacks.volume_results import VolumeResults

_EXPORTS = {
    "CalibrationGuard": "anomalib_ea2d.callbacks.guards",
    "NumericsGuard": "anomalib_ea2d.callbacks.guards",
    "UncalibratedModelError": "anomalib_ea2d.callbacks.guards",
    "ValidateAfterTraining": "anomalib_ea2d.callbacks.guards",
    "WarnUncalibratedExport": "anomalib_ea2d.callbacks.guards",
    "EncoderPretraining": "anomalib_ea2d.callbacks.encoder_pretraining",
    "PretrainableEncoder": "anomalib_ea2d.callbacks.encoder_pretraining",
    "ImageScores": "anomalib_ea2d.callbacks.image_scores",
    "RawPredictions": "anomalib_ea2d.callbacks.raw_predictions",
    "Foreground": "anomalib_ea2d.callbacks.roi",
    "RegionOfInterest": "anomalib_ea2d.callbacks.roi",
    "VolumeResults": "anomalib_ea2d.callbacks.volume_results",
    # The old module anomalib_ea2d.callbacks held EA2D's ContrastiveAugmentation; its class path stays valid.
    "ContrastiveAugmentation": "anomalib_ea2d.models.image.ea2d.callbacks",
}

__all__ = [
    "CalibrationGuard",
    "EncoderPretraining",
    "Foreground",
    "ImageScores",
    "NumericsGuard",
    "PretrainableEncoder",
    "RawPredictions",
    "RegionOfInterest",
    "UncalibratedModelError",
    "ValidateAfterTraining",
    "VolumeResults",
    "WarnUncalibratedExport",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
