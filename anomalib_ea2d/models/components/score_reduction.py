"""Image score of an anomaly map: its ``max``, ``mean`` or ``topk`` mean, optionally within a region of interest.

Used by EA2D's anomaly-map generator (per view, at feature resolution) and by the
:class:`~anomalib_ea2d.callbacks.roi.RegionOfInterest` callback (on any model's masked map); written
with tensor operations that export to ONNX/OpenVINO with a dynamic input size.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

ScoreReduction = Literal["max", "mean", "topk"]
SCORE_REDUCTIONS: tuple[str, ...] = ("max", "mean", "topk")


def reduce_map(
    anomaly_map: torch.Tensor,
    reduction: ScoreReduction = "max",
    top_k_fraction: float = 0.01,
    roi: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-image score of a non-negative ``[B, 1, H, W]`` map, optionally restricted to a 0/1 ``roi``.

    Args:
        anomaly_map: Non-negative anomaly map.
        reduction: ``"max"``, ``"mean"`` (over the ROI when given) or ``"topk"``: mean of the
            ``max(1, floor(top_k_fraction * H * W + 0.5))`` highest values (cells outside the ROI
            count as 0). Rounded half up with ``floor``, which exports to ONNX with a dynamic input
            size (Python's ``round`` of a symbolic size does not).
        top_k_fraction: Fraction of the map's cells averaged by ``"topk"``.
        roi: Optional 0/1 mask broadcastable to ``anomaly_map``.

    Returns:
        ``[B]`` scores.

    Example:
        >>> import torch
        >>> m = torch.arange(100.0).view(1, 1, 10, 10)
        >>> reduce_map(m, "topk", top_k_fraction=0.02)  # mean of 98 and 99
        tensor([98.5000])
    """
    if roi is not None:
        anomaly_map = anomaly_map * roi
    flat = anomaly_map.flatten(1)
    if reduction == "max":
        return flat.amax(dim=1)
    if reduction == "mean":
        if roi is None:
            return flat.mean(dim=1)
        area = roi.expand_as(anomaly_map).flatten(1).sum(dim=1)
        return flat.sum(dim=1) / area.clamp(min=1.0)
    k = max(1, math.floor(top_k_fraction * flat.shape[1] + 0.5))
    return flat.topk(k, dim=1).values.mean(dim=1)


__all__ = ["SCORE_REDUCTIONS", "ScoreReduction", "reduce_map"]
