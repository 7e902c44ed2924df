"""The accuracy metrics every model of a benchmark reports, and their computation on raw predictions.

One set of anomalib metric objects serves both anomalib's evaluator (models tested with
``Engine.test``) and :func:`compute_metrics` (predictions of exported models), so torch and
OpenVINO outputs are scored the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch
from anomalib.metrics import AUPRO, AUROC, PRO, Evaluator, F1Score
from torch.nn import functional as F  # noqa: N812

from anomalib_ea2d.metrics.evaluator import (
    AveragePrecision,
    BestDice,
    Dice,
    RawScoreEvaluator,
    Sensitivity,
    SensitivityAtSpecificity,
    Specificity,
)

METRIC_KEYS: tuple[str, ...] = ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_AUPRO", "pixel_PRO")
"""Metrics every model of the comparison reports (one shared evaluator).

``pixel_AUPRO`` integrates the per-region overlap up to a false-positive rate of 0.3 (the usual
PRO figure of papers); ``pixel_PRO`` is anomalib's PRO at one threshold (0.5 of the normalised
map), which a map that is high everywhere also scores well on.
"""

MEDICAL_KEYS: tuple[str, ...] = (
    "image_AveragePrecision",
    "image_SensitivityAtSpecificity",
    "image_Sensitivity",
    "image_Specificity",
    "pixel_AveragePrecision",
    "pixel_Dice",
    "pixel_BestDice",
)
"""Medical metrics ``Engine.test`` also reports (:mod:`anomalib_ea2d.metrics.evaluator`): AP, sensitivity at
95 % specificity, sensitivity and specificity at the model's operating threshold, Dice at it, best Dice."""

MIN_SPECIFICITY = 0.95
"""Specificity of ``image_SensitivityAtSpecificity``."""

METRIC_LABELS: dict[str, str] = {
    "image_AUROC": "image AUROC",
    "image_F1Score": "image F1",
    "pixel_AUROC": "pixel AUROC",
    "pixel_AUPRO": "pixel AUPRO",
    "pixel_PRO": "PRO@0.5",
    "image_AveragePrecision": "image AP",
    "image_SensitivityAtSpecificity": "sens@95%spec",
    "image_Sensitivity": "sens (op)",
    "image_Specificity": "spec (op)",
    "pixel_AveragePrecision": "pixel AP",
    "pixel_Dice": "Dice (op)",
    "pixel_BestDice": "best Dice",
}
"""Column headers of the metrics in the reports."""

PRO_THRESHOLD = 0.5
"""Binarisation threshold of PRO on the post-processed (normalised) anomaly maps, anomalib's default."""


def metric_objects(prefixed: bool) -> dict[str, Any]:
    """Fresh metrics of :data:`METRIC_KEYS`, named ``image_*``/``pixel_*`` when ``prefixed``.

    Example:
        >>> sorted(metric_objects(prefixed=False)) == sorted(METRIC_KEYS)
        True
    """
    image, pixel = ("image_", "pixel_") if prefixed else ("", "")
    mask_fields = ["anomaly_map", "gt_mask"]
    return {
        "image_AUROC": AUROC(fields=["pred_score", "gt_label"], prefix=image),
        "image_F1Score": F1Score(fields=["pred_label", "gt_label"], prefix=image),
        "pixel_AUROC": AUROC(fields=mask_fields, prefix=pixel, strict=False),
        "pixel_AUPRO": AUPRO(fields=mask_fields, prefix=pixel, strict=False, fpr_limit=0.3),
        "pixel_PRO": PRO(fields=mask_fields, prefix=pixel, strict=False, threshold=PRO_THRESHOLD),
    }


def medical_metric_objects() -> dict[str, Any]:
    """Fresh metrics of :data:`MEDICAL_KEYS`, named as anomalib's evaluator reports them.

    Example:
        >>> list(medical_metric_objects()) == list(MEDICAL_KEYS)
        True
    """
    image, pixel, labels = ["pred_score", "gt_label"], ["anomaly_map", "gt_mask"], ["pred_label", "gt_label"]
    metrics = [
        AveragePrecision(fields=image, prefix="image_"),
        SensitivityAtSpecificity(fields=image, prefix="image_", min_specificity=MIN_SPECIFICITY),
        Sensitivity(fields=labels, prefix="image_"),
        Specificity(fields=labels, prefix="image_"),
        AveragePrecision(fields=pixel, prefix="pixel_", strict=False),
        Dice(fields=["pred_mask", "gt_mask"], prefix="pixel_", strict=False),
        BestDice(fields=pixel, prefix="pixel_", strict=False),
    ]
    return {metric.name: metric for metric in metrics}


def shared_evaluator(medical: bool = False) -> Evaluator:
    """An anomalib evaluator of :data:`METRIC_KEYS` (and :data:`MEDICAL_KEYS`), the same for every model."""
    metrics = list(metric_objects(prefixed=True).values())
    if medical:
        metrics += list(medical_metric_objects().values())
    return RawScoreEvaluator(test_metrics=metrics)


def compute_metrics(outputs: Sequence[dict[str, torch.Tensor]], batches: Sequence[Any]) -> dict[str, float]:
    """Image AUROC/F1 and pixel AUROC/PRO of predictions (``pred_score``, ``pred_label``, ``anomaly_map``).

    The anomalib metric classes are fed exactly as anomalib's evaluator feeds them.

    Args:
        outputs: One prediction dict per test batch.
        batches: The test batches (``gt_label``, ``gt_mask``).
    """
    metrics = metric_objects(prefixed=False)
    for output, batch in zip(outputs, batches, strict=True):
        anomaly_map = output["anomaly_map"].float()
        if anomaly_map.ndim == 3:
            anomaly_map = anomaly_map.unsqueeze(1)
        mask = batch.gt_mask
        if mask is not None and anomaly_map.shape[-2:] != mask.shape[-2:]:
            anomaly_map = F.interpolate(anomaly_map, size=mask.shape[-2:], mode="bilinear", align_corners=False)
        view = SimpleNamespace(
            pred_score=output["pred_score"].float().reshape(-1),
            pred_label=output["pred_label"].reshape(-1).bool(),
            anomaly_map=anomaly_map.squeeze(1),
            gt_label=batch.gt_label,
            gt_mask=mask,
        )
        for metric in metrics.values():
            metric.update(view)
    return {key: float(metric.compute()) for key, metric in metrics.items()}


__all__ = [
    "MEDICAL_KEYS",
    "METRIC_KEYS",
    "METRIC_LABELS",
    "MIN_SPECIFICITY",
    "PRO_THRESHOLD",
    "compute_metrics",
    "medical_metric_objects",
    "metric_objects",
    "shared_evaluator",
]
