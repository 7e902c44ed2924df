"""What the project's metrics share: predictions and targets flattened before the torchmetrics update."""

from __future__ import annotations

import torch


class FlattenedUpdate:
    """Flattens predictions and targets before the torchmetrics update, as anomalib's own metrics do.

    Models differ in the shape of their image scores (``(B,)`` or ``(B, 1)``) and labels; the
    values are paired element by element either way. Put it between
    :class:`~anomalib.metrics.AnomalibMetric` and the torchmetrics class in the bases.
    """

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Update with flattened ``preds`` and ``target``."""
        super().update(preds.flatten(), target.flatten())  # type: ignore[misc]


__all__ = ["FlattenedUpdate"]
