"""Best Dice over all thresholds of the anomaly map: anomalib's ``F1Max`` (F1 = Dice at the best threshold)."""

from __future__ import annotations

from anomalib.metrics import F1Max


class BestDice(F1Max):
    """Best Dice over all thresholds of ``anomaly_map`` against ``gt_mask`` (anomalib's ``F1Max``)."""


__all__ = ["BestDice"]
