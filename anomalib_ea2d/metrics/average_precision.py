"""Average precision of scores or anomaly maps: torchmetrics' ``BinaryAveragePrecision`` (step-wise, as scikit-learn).

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

from anomalib.metrics import AnomalibMetric
from torchmetrics.classification import BinaryAveragePrecision

from anomalib_ea2d.metrics.base import FlattenedUpdate


class AveragePrecision(AnomalibMetric, FlattenedUpdate, BinaryAveragePrecision):  # type: ignore[misc]
    """Average precision (area under the step-wise precision-recall curve) of scores or maps."""


__all__ = ["AveragePrecision"]
