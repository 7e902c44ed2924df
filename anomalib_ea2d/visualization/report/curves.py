"""ROC and precision-recall curves, their areas, and a bounded sample of pixels for the run report.

The curves are computed the way the logged metrics are: on the raw scores, every distinct score a
threshold, ties grouped. The area under the ROC curve is the trapezoidal area (torchmetrics' and
anomalib's AUROC); average precision is the step-wise sum ``sum((R_n - R_{n-1}) * P_n)``
(torchmetrics' and scikit-learn's). :func:`curve_points` draws them in float64 (and with sample
weights); :func:`evaluator_areas` computes the two areas with the very metric classes the project's
evaluator logs (anomalib's ``AUROC``, the project's ``AveragePrecision``, float32, no sigmoid), so the
numbers the report prints equal the logged ones to the last digit for the same arrays (float64 and
float32 sums can differ by ~1e-5 over tens of thousands of pixels).

Pixels are too many to keep for thousands of images: :class:`StratifiedSample` keeps a uniform
random sample of at most ``capacity`` normal and ``capacity`` lesion pixels (random keys, the
smallest kept), and counts all of them; :meth:`StratifiedSample.weights` weights each kept pixel by
its class's sampling fraction, so the precision of the sample's PR curve estimates the full set's.
While no class overflows its capacity, the sample is the whole set and the curves are exact.

Example:
    >>> import numpy as np
    >>> points = curve_points(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    >>> round(points.auroc, 4), round(points.average_precision, 4)
    (0.75, 0.8333)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch


@dataclass
class CurvePoints:
    """One ROC and one PR curve with their areas.

    Attributes:
        fpr: False-positive rate per threshold, starting at 0.
        tpr: True-positive rate (sensitivity, recall) per threshold, starting at 0.
        precision: Precision per threshold (aligned with ``tpr[1:]``).
        thresholds: The distinct scores, highest first (aligned with ``tpr[1:]``).
        auroc: Trapezoidal area under the ROC curve.
        average_precision: Step-wise area under the PR curve.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    precision: np.ndarray
    thresholds: np.ndarray
    auroc: float
    average_precision: float


def curve_points(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> CurvePoints:
    """ROC and PR curves of ``scores`` (higher: more anomalous) against binary ``labels``.

    Args:
        scores: Raw scores, any range.
        labels: 1 abnormal, 0 normal; both must occur.
        weights: Optional weight per sample (e.g. inverse sampling fraction); default 1.

    Raises:
        ValueError: ``labels`` hold one class only, or the arrays differ in length.
    """
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.size != labels.size:
        msg = f"scores ({scores.size}) and labels ({labels.size}) differ in length; pass one label per score."
        raise ValueError(msg)
    if labels.all() or not labels.any():
        msg = "labels must hold both normal (0) and abnormal (1) samples to draw ROC/PR curves; test on both kinds."
        raise ValueError(msg)
    weight = np.ones_like(scores) if weights is None else np.asarray(weights, np.float64).ravel()
    order = np.argsort(-scores, kind="stable")
    scores, labels, weight = scores[order], labels[order], weight[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(weight * labels)[last_of_tie]
    fps = np.cumsum(weight * ~labels)[last_of_tie]
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    precision = tps / (tps + fps)
    auroc = float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))
    average_precision = float(np.sum(np.diff(tpr) * precision))
    return CurvePoints(fpr, tpr, precision, scores[last_of_tie], auroc, average_precision)


def evaluator_areas(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """AUROC and average precision of raw ``scores`` as :class:`~anomalib_ea2d.metrics.RawScoreEvaluator` logs them.

    Example:
        >>> evaluator_areas(np.array([3.0, 7.0, 5.0, 1.0]), np.array([0, 1, 1, 0]))
        (1.0, 1.0)
    """
    from anomalib.metrics import AUROC  # noqa: PLC0415 - anomalib's metrics import slowly

    from anomalib_ea2d.metrics.evaluator import AveragePrecision  # noqa: PLC0415

    batch = SimpleNamespace(
        pred_score=torch.as_tensor(np.asarray(scores), dtype=torch.float32).reshape(-1),
        gt_label=torch.as_tensor(np.asarray(labels).astype(np.int64)).reshape(-1),
    )
    areas = []
    for metric in (AUROC(fields=["pred_score", "gt_label"]), AveragePrecision(fields=["pred_score", "gt_label"])):
        metric.normalization = None  # raw scores are not logits: rank them as they are (as the evaluator does)
        metric.update(batch)
        areas.append(float(metric.compute()))
    return areas[0], areas[1]


def rates_at(decisions: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Sensitivity and specificity of binary ``decisions`` (NaN where a class is missing).

    Example:
        >>> rates_at(np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]))
        (0.5, 0.5)
    """
    decisions, labels = np.asarray(decisions).ravel().astype(bool), np.asarray(labels).ravel().astype(bool)
    weight = np.ones(labels.size) if weights is None else np.asarray(weights, np.float64).ravel()
    positives, negatives = weight[labels].sum(), weight[~labels].sum()
    sensitivity = weight[labels & decisions].sum() / positives if positives else float("nan")
    specificity = weight[~labels & ~decisions].sum() / negatives if negatives else float("nan")
    return float(sensitivity), float(specificity)


class StratifiedSample:
    """A uniform random sample of at most ``capacity`` values per class, from a stream of batches.

    Each value gets a random key; the ``capacity`` smallest keys are kept (pruned whenever twice as
    many have accumulated, so memory stays below ``2 * capacity`` values and keys per class).

    Args:
        capacity: Values kept per class (normal, abnormal).
        seed: Seed of the random keys.

    Example:
        >>> sample = StratifiedSample(capacity=3)
        >>> sample.update(torch.arange(10.0), torch.tensor([0] * 8 + [1] * 2))
        >>> sample.totals, [len(v) for v in sample.values]
        ([8, 2], [3, 2])
    """

    def __init__(self, capacity: int = 2_000_000, seed: int = 0) -> None:
        if capacity < 1:
            msg = f"capacity must be >= 1, got {capacity}; e.g. 2000000 pixels per class."
            raise ValueError(msg)
        self.capacity = capacity
        self.generator = torch.Generator().manual_seed(seed)
        self.values: list[torch.Tensor] = [torch.empty(0), torch.empty(0)]  # float32, at most capacity each
        self.keys: list[torch.Tensor] = [torch.empty(0), torch.empty(0)]
        self.totals = [0, 0]

    def update(self, values: torch.Tensor, labels: torch.Tensor) -> None:
        """Add ``values`` with their binary ``labels`` (same number of elements)."""
        values = values.detach().reshape(-1).float().cpu()  # maps are float32: kept exactly, 4 bytes each
        labels = labels.detach().reshape(-1).bool().cpu()
        for kind, chosen in enumerate((~labels, labels)):
            new = values[chosen]
            if not new.numel():
                continue
            self.totals[kind] += new.numel()
            self.keys[kind] = torch.cat([self.keys[kind], torch.rand(new.numel(), generator=self.generator)])
            self.values[kind] = torch.cat([self.values[kind], new])
            if self.keys[kind].numel() > 2 * self.capacity:  # pruned now and then: one top-k per capacity added
                self._prune(kind)

    def _prune(self, kind: int) -> None:
        """Keep the ``capacity`` values of class ``kind`` with the smallest keys."""
        if self.keys[kind].numel() > self.capacity:
            keep = torch.topk(self.keys[kind], self.capacity, largest=False).indices
            self.keys[kind], self.values[kind] = self.keys[kind][keep], self.values[kind][keep]

    @property
    def exact(self) -> bool:
        """Whether every value seen is kept (the sample is the whole set)."""
        return all(len(v) == total for v, total in zip(self.values, self.totals, strict=True))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(values, labels, weights)`` of the kept values; weights: class total / class kept."""
        for kind in (0, 1):
            self._prune(kind)
        values = np.concatenate([v.numpy().astype(np.float64) for v in self.values])
        labels = np.concatenate([np.full(len(v), kind) for kind, v in enumerate(self.values)])
        factors = [total / max(len(v), 1) for v, total in zip(self.values, self.totals, strict=True)]
        weights = np.concatenate([np.full(len(v), factors[kind]) for kind, v in enumerate(self.values)])
        return values, labels, weights


__all__ = ["CurvePoints", "StratifiedSample", "curve_points", "evaluator_areas", "rates_at"]
