"""Metrics that medical anomaly-detection papers report, as anomalib metrics.

Average precision (image and pixel), Dice at the operating threshold and the best Dice over all
thresholds (pixel level, pooled over all test pixels), sensitivity at a fixed specificity, and the
sensitivity/specificity reached at the post-processor's operating point. Each is a torchmetrics or
anomalib metric behind anomalib's :class:`~anomalib.metrics.AnomalibMetric` batch interface, so it
works with any anomalib model's :class:`~anomalib.metrics.Evaluator`:

- ``AveragePrecision``: torchmetrics' ``BinaryAveragePrecision`` (step-wise, as scikit-learn);
- ``Dice``: the F1 score of binary predictions, i.e. ``2 TP / (2 TP + FP + FN)``;
- ``BestDice``: anomalib's ``F1Max`` (F1 = Dice at the best threshold);
- ``SensitivityAtSpecificity``: torchmetrics' ``BinarySensitivityAtSpecificity``, the sensitivity only;
- ``Sensitivity``/``Specificity``: torchmetrics' ``BinaryRecall``/``BinarySpecificity`` of the labels.

Example:
    >>> import torch
    >>> from anomalib.data import ImageBatch
    >>> ap = AveragePrecision(fields=["pred_score", "gt_label"], prefix="image_")
    >>> ap.update(ImageBatch(image=torch.zeros(4, 3, 8, 8), gt_label=torch.tensor([0, 1, 0, 1]),
    ...                      pred_score=torch.tensor([0.1, 0.9, 0.2, 0.8])))
    >>> ap.name, float(ap.compute())
    ('image_AveragePrecision', 1.0)
"""

from __future__ import annotations

import torch
from anomalib.metrics import AUROC, PRO, AnomalibMetric, Evaluator, F1Max, F1Score
from torchmetrics.classification import (
    BinaryAveragePrecision,
    BinaryF1Score,
    BinaryRecall,
    BinarySensitivityAtSpecificity,
    BinarySpecificity,
)


class _Flattened:
    """Flattens predictions and targets before the torchmetrics update, as anomalib's own metrics do.

    Models differ in the shape of their image scores (``(B,)`` or ``(B, 1)``) and labels; the
    values are paired element by element either way.
    """

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Update with flattened ``preds`` and ``target``."""
        super().update(preds.flatten(), target.flatten())  # type: ignore[misc]


class AveragePrecision(AnomalibMetric, _Flattened, BinaryAveragePrecision):  # type: ignore[misc]
    """Average precision (area under the step-wise precision-recall curve) of scores or maps."""


class Dice(AnomalibMetric, _Flattened, BinaryF1Score):  # type: ignore[misc]
    """Dice coefficient of binary predictions (``pred_mask``) against ``gt_mask``, pooled over pixels."""


class BestDice(F1Max):
    """Best Dice over all thresholds of ``anomaly_map`` against ``gt_mask`` (anomalib's ``F1Max``)."""


class Sensitivity(AnomalibMetric, _Flattened, BinaryRecall):  # type: ignore[misc]
    """Sensitivity (recall) of binary predictions at the operating threshold."""


class Specificity(AnomalibMetric, _Flattened, BinarySpecificity):  # type: ignore[misc]
    """Specificity of binary predictions at the operating threshold."""


class SensitivityAtSpecificity(AnomalibMetric, _Flattened, BinarySensitivityAtSpecificity):  # type: ignore[misc]
    """Highest sensitivity among the thresholds whose specificity is at least ``min_specificity``."""

    def compute(self) -> torch.Tensor:  # type: ignore[override]
        """The sensitivity (torchmetrics also returns the threshold; dropped here)."""
        result = super().compute()
        return result if result is None or isinstance(result, torch.Tensor) else result[0]


def medical_evaluator(min_specificity: float = 0.95) -> Evaluator:
    """Test metrics of medical anomaly detection, for any anomalib model (``evaluator=medical_evaluator()``).

    Image: AUROC, AveragePrecision, F1Score, Sensitivity and Specificity at the operating threshold,
    SensitivityAtSpecificity (at ``min_specificity``). Pixel (where masks exist): AUROC,
    AveragePrecision, PRO, Dice at the operating threshold, BestDice.

    Example:
        >>> [metric.name for metric in medical_evaluator().test_metrics][:3]
        ['image_AUROC', 'image_AveragePrecision', 'image_F1Score']
    """
    if not 0.0 < min_specificity <= 1.0:
        msg = f"min_specificity must be in (0, 1], got {min_specificity}; e.g. 0.95."
        raise ValueError(msg)
    image, pixel = ["pred_score", "gt_label"], ["anomaly_map", "gt_mask"]
    return Evaluator(
        test_metrics=[
            AUROC(fields=image, prefix="image_"),
            AveragePrecision(fields=image, prefix="image_"),
            F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
            Sensitivity(fields=["pred_label", "gt_label"], prefix="image_"),
            Specificity(fields=["pred_label", "gt_label"], prefix="image_"),
            SensitivityAtSpecificity(fields=image, prefix="image_", min_specificity=min_specificity),
            AUROC(fields=pixel, prefix="pixel_", strict=False),
            AveragePrecision(fields=pixel, prefix="pixel_", strict=False),
            PRO(fields=pixel, prefix="pixel_", strict=False),
            Dice(fields=["pred_mask", "gt_mask"], prefix="pixel_", strict=False),
            BestDice(fields=pixel, prefix="pixel_", strict=False),
        ],
    )


def ea2d_evaluator() -> Evaluator:
    """EA2D's default metric set: image AUROC/F1 and, where masks exist, pixel AUROC and PRO.

    Example:
        >>> [metric.name for metric in ea2d_evaluator().test_metrics]
        ['image_AUROC', 'image_F1Score', 'pixel_AUROC', 'pixel_PRO']
    """
    return Evaluator(
        test_metrics=[
            AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
            F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
            AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            PRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
        ],
    )


__all__ = [
    "AveragePrecision",
    "BestDice",
    "Dice",
    "ea2d_evaluator",
    "Sensitivity",
    "SensitivityAtSpecificity",
    "Specificity",
    "medical_evaluator",
]
