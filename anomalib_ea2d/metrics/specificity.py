"""Specificity at the operating threshold: torchmetrics' ``BinarySpecificity`` of the predicted labels."""

from __future__ import annotations

from anomalib.metrics import AnomalibMetric
from torchmetrics.classification import BinarySpecificity

from anomalib_ea2d.metrics.base import FlattenedUpdate


class Specificity(AnomalibMetric, FlattenedUpdate, BinarySpecificity):  # type: ignore[misc]
    """Specificity of binary predictions at the operating threshold."""


__all__ = ["Specificity"]
