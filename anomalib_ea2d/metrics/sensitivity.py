"""Sensitivity at the operating threshold: torchmetrics' ``BinaryRecall`` of the predicted labels."""

from __future__ import annotations

from anomalib.metrics import AnomalibMetric
from torchmetrics.classification import BinaryRecall

from anomalib_ea2d.metrics.base import FlattenedUpdate


class Sensitivity(AnomalibMetric, FlattenedUpdate, BinaryRecall):  # type: ignore[misc]
    """Sensitivity (recall) of binary predictions at the operating threshold."""


__all__ = ["Sensitivity"]
