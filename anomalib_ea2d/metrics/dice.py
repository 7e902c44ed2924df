"""Dice at the operating threshold: the F1 score of binary predictions, ``2 TP / (2 TP + FP + FN)``, over all pixels."""

from __future__ import annotations

from anomalib.metrics import AnomalibMetric
from torchmetrics.classification import BinaryF1Score

from anomalib_ea2d.metrics.base import FlattenedUpdate


class Dice(AnomalibMetric, FlattenedUpdate, BinaryF1Score):  # type: ignore[misc]
    """Dice coefficient of binary predictions (``pred_mask``) against ``gt_mask``, pooled over pixels."""


__all__ = ["Dice"]
