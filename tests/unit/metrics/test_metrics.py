"""Medical metrics against answers computed here from their definitions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from anomalib.data import ImageBatch

from anomalib_ea2d.metrics.evaluator import (
    AveragePrecision,
    BestDice,
    Dice,
    Sensitivity,
    SensitivityAtSpecificity,
    Specificity,
    medical_evaluator,
)


def _average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over the positives of the precision among the samples ranked at or above each (no ties)."""
    order = torch.argsort(scores, descending=True)
    ranked = labels[order].bool()
    hits = torch.cumsum(ranked.float(), 0)
    ranks = torch.arange(1, len(ranked) + 1, dtype=torch.float32)
    return float((hits / ranks)[ranked].mean())


def _dice(pred: torch.Tensor, target: torch.Tensor) -> float:
    tp = float((pred & target).sum())
    return 2 * tp / (float(pred.sum()) + float(target.sum()))


def _scores_and_labels(n: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    labels = torch.rand(n, generator=generator) < 0.4
    scores = torch.rand(n, generator=generator) + 0.3 * labels  # overlapping classes, distinct values
    return scores, labels


def _batch(scores: torch.Tensor, labels: torch.Tensor, **fields: torch.Tensor) -> ImageBatch:
    return ImageBatch(image=torch.zeros(len(scores), 3, 4, 4), pred_score=scores, gt_label=labels.long(), **fields)


def test_image_average_precision() -> None:
    scores, labels = _scores_and_labels()
    metric = AveragePrecision(fields=["pred_score", "gt_label"], prefix="image_")
    metric.update(_batch(scores[:30], labels[:30]))
    metric.update(_batch(scores[30:], labels[30:]))
    assert float(metric.compute()) == pytest.approx(_average_precision(scores, labels), abs=1e-6)


def test_sensitivity_at_specificity() -> None:
    scores, labels = _scores_and_labels()
    best = 0.0
    for threshold in scores.tolist():  # predicted positive: score >= threshold
        predicted = scores >= threshold
        specificity = float((~predicted & ~labels).sum()) / float((~labels).sum())
        if specificity >= 0.95:
            best = max(best, float((predicted & labels).sum()) / float(labels.sum()))
    metric = SensitivityAtSpecificity(fields=["pred_score", "gt_label"], min_specificity=0.95)
    metric.update(_batch(scores, labels))
    assert float(metric.compute()) == pytest.approx(best, abs=1e-6)


def test_dice_at_threshold_and_best_dice() -> None:
    generator = torch.Generator().manual_seed(5)
    masks = torch.zeros(6, 8, 8, dtype=torch.bool)
    masks[:3, 2:5, 3:7] = True
    maps = torch.rand(6, 8, 8, generator=generator) + 0.5 * masks
    batch = _batch(torch.zeros(6), masks.flatten(1).any(1), anomaly_map=maps, gt_mask=masks, pred_mask=maps > 0.9)

    dice = Dice(fields=["pred_mask", "gt_mask"], prefix="pixel_")
    dice.update(batch)
    assert float(dice.compute()) == pytest.approx(_dice(maps > 0.9, masks), abs=1e-6)

    best = BestDice(fields=["anomaly_map", "gt_mask"], prefix="pixel_")
    best.update(batch)
    expected = max(_dice(maps >= t, masks) for t in maps.flatten().tolist())
    assert float(best.compute()) == pytest.approx(expected, abs=1e-5)
    assert best.name == "pixel_BestDice"


def test_medical_evaluator_names() -> None:
    names = [metric.name for metric in medical_evaluator().test_metrics]
    assert names == [
        "image_AUROC",
        "image_AveragePrecision",
        "image_F1Score",
        "image_Sensitivity",
        "image_Specificity",
        "image_SensitivityAtSpecificity",
        "pixel_AUROC",
        "pixel_AveragePrecision",
        "pixel_PRO",
        "pixel_Dice",
        "pixel_BestDice",
    ]


def test_image_metrics_accept_column_scores_as_some_models_emit_them() -> None:
    """UniNet-style ``(B, 1)`` scores and labels give the same values as flat ``(B,)`` ones."""
    scores, labels = _scores_and_labels()
    for metric_class, options in ((AveragePrecision, {}), (SensitivityAtSpecificity, {"min_specificity": 0.95})):
        flat = metric_class(fields=["pred_score", "gt_label"], **options)
        column = metric_class(fields=["pred_score", "gt_label"], **options)
        flat.update(_batch(scores, labels))
        column.update(SimpleNamespace(pred_score=scores[:, None], gt_label=labels.long()[:, None]))
        assert float(column.compute()) == pytest.approx(float(flat.compute()), abs=1e-7)
    predicted = scores > 0.7
    for metric_class in (Sensitivity, Specificity):
        flat = metric_class(fields=["pred_label", "gt_label"])
        column = metric_class(fields=["pred_label", "gt_label"])
        flat.update(SimpleNamespace(pred_label=predicted, gt_label=labels.long()))
        column.update(SimpleNamespace(pred_label=predicted[:, None], gt_label=labels.long()))
        assert float(column.compute()) == pytest.approx(float(flat.compute()))
    # The last one is the specificity, counted by hand.
    assert float(flat.compute()) == pytest.approx(float((~predicted & ~labels).sum()) / float((~labels).sum()))
