"""Metrics that medical anomaly-detection papers report, as anomalib metrics, one per module.

Average precision (image and pixel), Dice at the operating threshold and the best Dice over all
thresholds (pixel level, pooled over all test pixels), sensitivity at a fixed specificity, and the
sensitivity/specificity reached at the post-processor's operating point. Each is a torchmetrics or
anomalib metric behind anomalib's :class:`~anomalib.metrics.AnomalibMetric` batch interface, so it
works with any anomalib model's :class:`~anomalib.metrics.Evaluator`:

- :class:`AveragePrecision` (``average_precision``): torchmetrics' ``BinaryAveragePrecision``;
- :class:`Dice` (``dice``): the F1 score of binary predictions, ``2 TP / (2 TP + FP + FN)``;
- :class:`BestDice` (``best_dice``): anomalib's ``F1Max`` (F1 = Dice at the best threshold);
- :class:`Sensitivity`/:class:`Specificity` (``sensitivity``, ``specificity``): of the predicted labels;
- :class:`SensitivityAtSpecificity` (``sensitivity_at_specificity``): at a fixed specificity.

``evaluator`` holds :class:`RawScoreEvaluator` (ranking metrics on the raw, unclipped scores) and
:func:`medical_evaluator` (all of the above for any model). Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.metrics.average_precision import AveragePrecision
    from anomalib_ea2d.metrics.best_dice import BestDice
    from anomalib_ea2d.metrics.dice import Dice
    from anomalib_ea2d.metrics.evaluator import (
        RANKING_METRICS,
        RawScoreEvaluator,
        medical_evaluator,
        ranks_scores,
        use_raw_score_evaluator,
    )
    from anomalib_ea2d.metrics.sensitivity import Sensitivity
    from anomalib_ea2d.metrics.sensitivity_at_specificity import SensitivityAtSpecificity
    from anomalib_ea2d.metrics.specificity import Specificity

_EXPORTS = {
    "AveragePrecision": "anomalib_ea2d.metrics.average_precision",
    "BestDice": "anomalib_ea2d.metrics.best_dice",
    "Dice": "anomalib_ea2d.metrics.dice",
    "Sensitivity": "anomalib_ea2d.metrics.sensitivity",
    "SensitivityAtSpecificity": "anomalib_ea2d.metrics.sensitivity_at_specificity",
    "Specificity": "anomalib_ea2d.metrics.specificity",
    "RANKING_METRICS": "anomalib_ea2d.metrics.evaluator",
    "RawScoreEvaluator": "anomalib_ea2d.metrics.evaluator",
    "medical_evaluator": "anomalib_ea2d.metrics.evaluator",
    "ranks_scores": "anomalib_ea2d.metrics.evaluator",
    "use_raw_score_evaluator": "anomalib_ea2d.metrics.evaluator",
    # The old module anomalib_ea2d.metrics held EA2D's metric set; the name stays importable from here.
    "ea2d_evaluator": "anomalib_ea2d.models.image.ea2d.recipe",
}

__all__ = [
    "RANKING_METRICS",
    "AveragePrecision",
    "BestDice",
    "Dice",
    "RawScoreEvaluator",
    "Sensitivity",
    "SensitivityAtSpecificity",
    "Specificity",
    "medical_evaluator",
    "ranks_scores",
    "use_raw_score_evaluator",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
