"""Sensitivity at a fixed specificity: torchmetrics' ``BinarySensitivityAtSpecificity``, the sensitivity only."""

from __future__ import annotations

import torch
from anomalib.metrics import AnomalibMetric
from torchmetrics.classification import BinarySensitivityAtSpecificity

from anomalib_ea2d.metrics.base import FlattenedUpdate


class SensitivityAtSpecificity(AnomalibMetric, FlattenedUpdate, BinarySensitivityAtSpecificity):  # type: ignore[misc]
    """Highest sensitivity among the thresholds whose specificity is at least ``min_specificity``."""

    def compute(self) -> torch.Tensor:  # type: ignore[override]
        """The sensitivity (torchmetrics also returns the threshold; dropped here)."""
        result = super().compute()
        return result if result is None or isinstance(result, torch.Tensor) else result[0]


__all__ = ["SensitivityAtSpecificity"]
