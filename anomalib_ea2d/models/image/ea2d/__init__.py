"""EA2D: Encoder-Attention-2Decoders reconstruction for medical anomaly detection (Tang et al., IEEE TMI 2025).

The model package, laid out like anomalib's ``models/image/<model>/``: ``torch_model``
(:class:`EA2DModel`), ``lightning_model`` (:class:`EA2D`), ``loss``, ``anomaly_map`` and
``components/`` (attention, decoder, per-position map standardisation), with what only EA2D uses:
``recipe`` (init-arg checks, metric sets, training length, learning rates), ``reference``
(checkpoints of the paper's reference code), ``checkpoint`` (clear errors for files that are no EA2D
checkpoint), ``map_statistics`` (fitting the map standardisation) and ``callbacks``
(:class:`ContrastiveAugmentation`). Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.models.image.ea2d.callbacks import ContrastiveAugmentation
    from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D, EA2DAnomalibMetrics
    from anomalib_ea2d.models.image.ea2d.loss import EA2DLoss
    from anomalib_ea2d.models.image.ea2d.reference import convert_reference_state_dict
    from anomalib_ea2d.models.image.ea2d.torch_model import EA2DFeatures, EA2DModel

_EXPORTS = {
    "EA2D": "anomalib_ea2d.models.image.ea2d.lightning_model",
    "EA2DAnomalibMetrics": "anomalib_ea2d.models.image.ea2d.lightning_model",
    "EA2DModel": "anomalib_ea2d.models.image.ea2d.torch_model",
    "EA2DFeatures": "anomalib_ea2d.models.image.ea2d.torch_model",
    "EA2DLoss": "anomalib_ea2d.models.image.ea2d.loss",
    "ContrastiveAugmentation": "anomalib_ea2d.models.image.ea2d.callbacks",
    "convert_reference_state_dict": "anomalib_ea2d.models.image.ea2d.reference",
}

__all__ = [
    "EA2D",
    "ContrastiveAugmentation",
    "EA2DAnomalibMetrics",
    "EA2DFeatures",
    "EA2DLoss",
    "EA2DModel",
    "convert_reference_state_dict",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
