"""EA2D (Encoder-Attention-2Decoders) anomaly detection for medical images, as an anomalib plugin.

Public API::

    from anomalib_ea2d import EA2D, EA2DModel, EA2DLoss, convert_reference_state_dict

Attributes are imported on first use, so that the start-up hook that registers ``EA2D`` with
anomalib's CLI does not import torch in every Python process. Module paths from before the package
took anomalib's layout (``anomalib_ea2d.lightning_model``, ``anomalib_ea2d.callbacks.roi``, ...) still import,
as aliases of the modules that moved (:mod:`anomalib_ea2d._aliases`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._aliases import install as _install_aliases
from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.callbacks.image_scores import ImageScores
    from anomalib_ea2d.callbacks.roi import Foreground, RegionOfInterest
    from anomalib_ea2d.metrics.evaluator import RawScoreEvaluator, medical_evaluator
    from anomalib_ea2d.models.image.ea2d.callbacks import ContrastiveAugmentation
    from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D
    from anomalib_ea2d.models.image.ea2d.loss import EA2DLoss
    from anomalib_ea2d.models.image.ea2d.reference import convert_reference_state_dict
    from anomalib_ea2d.models.image.ea2d.torch_model import EA2DFeatures, EA2DModel
    from anomalib_ea2d.post_processing.specificity_post_processor import SpecificityPostProcessor
    from anomalib_ea2d.visualization.report import RunReport

_EXPORTS = {
    "EA2D": "anomalib_ea2d.models.image.ea2d.lightning_model",
    "EA2DModel": "anomalib_ea2d.models.image.ea2d.torch_model",
    "EA2DFeatures": "anomalib_ea2d.models.image.ea2d.torch_model",
    "EA2DLoss": "anomalib_ea2d.models.image.ea2d.loss",
    "ContrastiveAugmentation": "anomalib_ea2d.models.image.ea2d.callbacks",
    "convert_reference_state_dict": "anomalib_ea2d.models.image.ea2d.reference",
    "Foreground": "anomalib_ea2d.callbacks.roi",
    "RegionOfInterest": "anomalib_ea2d.callbacks.roi",
    "SpecificityPostProcessor": "anomalib_ea2d.post_processing.specificity_post_processor",
    "medical_evaluator": "anomalib_ea2d.metrics.evaluator",
    "RawScoreEvaluator": "anomalib_ea2d.metrics.evaluator",
    "ImageScores": "anomalib_ea2d.callbacks.image_scores",
    "RunReport": "anomalib_ea2d.visualization.report",
}

__all__ = [
    "EA2D",
    "ContrastiveAugmentation",
    "EA2DFeatures",
    "EA2DLoss",
    "EA2DModel",
    "Foreground",
    "ImageScores",
    "RawScoreEvaluator",
    "RegionOfInterest",
    "RunReport",
    "SpecificityPostProcessor",
    "convert_reference_state_dict",
    "medical_evaluator",
]


_install_aliases()
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
