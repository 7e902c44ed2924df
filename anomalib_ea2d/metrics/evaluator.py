"""The evaluator that ranks raw scores, and the metric set medical anomaly-detection papers report.

:class:`RawScoreEvaluator` (what :func:`medical_evaluator` and EA2D's evaluators build) computes
the ranking metrics (AUROC, AP, AUPRO, best Dice, sensitivity at a specificity) on the model's raw
scores and maps, kept before the post-processor normalised and clipped them
(:class:`~anomalib_ea2d.callbacks.raw_predictions.RawPredictions`), and the metrics of the operating point (F1,
Dice, sensitivity/specificity, PRO at 0.5) on the post-processed batch, as anomalib does.

:func:`medical_evaluator` builds one with the metrics of :mod:`anomalib_ea2d.metrics` (AP, Dice,
best Dice, sensitivity and specificity at the operating point and sensitivity at a specificity)
next to anomalib's AUROC, F1 and PRO.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from anomalib.metrics import AUPRO, AUROC, PRO, AnomalibMetric, Evaluator, F1Max, F1Score
from lightning.pytorch import LightningModule, Trainer
from torchmetrics.classification import BinaryPrecisionRecallCurve

from anomalib_ea2d.callbacks.raw_predictions import RawPredictions
from anomalib_ea2d.metrics.average_precision import AveragePrecision
from anomalib_ea2d.metrics.best_dice import BestDice
from anomalib_ea2d.metrics.dice import Dice
from anomalib_ea2d.metrics.sensitivity import Sensitivity
from anomalib_ea2d.metrics.sensitivity_at_specificity import SensitivityAtSpecificity
from anomalib_ea2d.metrics.specificity import Specificity

logger = logging.getLogger(__name__)


RANKING_METRICS: tuple[type, ...] = (BinaryPrecisionRecallCurve, AUPRO, F1Max)
"""Metrics that depend only on the order of the scores (every threshold): computed on raw scores."""


def ranks_scores(metric: AnomalibMetric) -> bool:
    """Whether ``metric`` ranks scores or maps over all thresholds (AUROC, AP, AUPRO, F1Max, ...).

    Example:
        >>> ranks_scores(AUROC(fields=["pred_score", "gt_label"]))
        True
        >>> ranks_scores(F1Score(fields=["pred_label", "gt_label"]))
        False
    """
    return isinstance(metric, RANKING_METRICS)


class RawScoreEvaluator(Evaluator):
    """anomalib's :class:`~anomalib.metrics.Evaluator` whose ranking metrics see the model's raw scores.

    anomalib's post-processor clips normalised scores to ``[0, 1]``: every test score above the
    validation range becomes 1.0 and AUROC/AP computed on them tie where the model did not (with a
    normal-only validation set, most abnormal scores). This evaluator feeds the ranking metrics
    (:func:`ranks_scores`) the raw ``pred_score``/``anomaly_map`` kept by
    :class:`~anomalib_ea2d.callbacks.raw_predictions.RawPredictions` (which it attaches before the post-processor)
    and turns off torchmetrics' per-batch sigmoid of scores outside ``[0, 1]``; the metrics of the
    operating point (``pred_label``/``pred_mask``, PRO at 0.5) see the post-processed batch. Use it
    with any anomalib model; the AUROC it logs is the AUROC of the raw scores the model wrote.

    Example:
        >>> evaluator = RawScoreEvaluator(test_metrics=[AUROC(fields=["pred_score", "gt_label"], prefix="image_")])
        >>> evaluator.test_metrics[0].normalization is None
        True
    """

    def __init__(
        self,
        val_metrics: AnomalibMetric | Sequence[AnomalibMetric] | None = None,
        test_metrics: AnomalibMetric | Sequence[AnomalibMetric] | None = None,
        compute_on_cpu: bool = True,
    ) -> None:
        super().__init__(val_metrics=val_metrics, test_metrics=test_metrics, compute_on_cpu=compute_on_cpu)
        for metric in [*self.val_metrics, *self.test_metrics]:
            if isinstance(metric, BinaryPrecisionRecallCurve):
                metric.normalization = None  # raw scores are not logits: rank them as they are

    @classmethod
    def from_evaluator(cls, evaluator: Evaluator) -> RawScoreEvaluator:
        """The same metrics (the same objects) in a :class:`RawScoreEvaluator`."""
        return cls(
            val_metrics=list(evaluator.val_metrics),
            test_metrics=list(evaluator.test_metrics),
            compute_on_cpu=evaluator.compute_on_cpu,
        )

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Attach :class:`~anomalib_ea2d.callbacks.raw_predictions.RawPredictions` before the post-processor."""
        super().setup(trainer, pl_module, stage)
        RawPredictions.attach(trainer, pl_module)

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,  # noqa: ANN401
        batch: Any,  # noqa: ANN401
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Update the ranking metrics with the raw scores, the others with the post-processed batch."""
        del pl_module, outputs, batch_idx, dataloader_idx
        raw = RawPredictions.find(trainer)
        raw_batch = raw.view(batch) if raw is not None else batch
        for metric in self.test_metrics:
            metric.update(raw_batch if ranks_scores(metric) else batch)


def use_raw_score_evaluator(trainer: Trainer, pl_module: LightningModule, caller: object, stage: str) -> None:
    """Make ``pl_module``'s plain anomalib evaluator a :class:`RawScoreEvaluator` with the same metrics.

    For a post-processor of this project (``caller``) to call from its ``setup``: whatever evaluator
    the model has, ranking metrics are then computed on the raw scores. Replaces the evaluator in
    ``trainer.callbacks`` too, and sets it up when Lightning has already passed it.
    """
    evaluator = getattr(pl_module, "evaluator", None)
    if not isinstance(evaluator, Evaluator) or isinstance(evaluator, RawScoreEvaluator):
        return
    upgraded = RawScoreEvaluator.from_evaluator(evaluator)
    pl_module.evaluator = upgraded
    callbacks = trainer.callbacks
    if evaluator in callbacks:
        position = callbacks.index(evaluator)
        callbacks[position] = upgraded
        if caller in callbacks and position < callbacks.index(caller):
            upgraded.setup(trainer, pl_module, stage)
    logger.info("%s ranks raw scores: its evaluator's AUROC/AP see scores before clipping.", type(pl_module).__name__)


def medical_evaluator(min_specificity: float = 0.95) -> Evaluator:
    """Test metrics of medical anomaly detection, for any anomalib model (``evaluator=medical_evaluator()``).

    Image: AUROC, AveragePrecision, F1Score, Sensitivity and Specificity at the operating threshold,
    SensitivityAtSpecificity (at ``min_specificity``). Pixel (where masks exist): AUROC,
    AveragePrecision, PRO, Dice at the operating threshold, BestDice.

    Example:
        >>> [metric.name for metric in medical_evaluator().test_metrics][:3]
        ['image_AUROC', 'image_AveragePrecision', 'image_F1Score']
    """
    if not 0.0 < min_specificity <= 1.0:
        msg = f"min_specificity must be in (0, 1], got {min_specificity}; e.g. 0.95."
        raise ValueError(msg)
    image, pixel = ["pred_score", "gt_label"], ["anomaly_map", "gt_mask"]
    return RawScoreEvaluator(
        test_metrics=[
            AUROC(fields=image, prefix="image_"),
            AveragePrecision(fields=image, prefix="image_"),
            F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
            Sensitivity(fields=["pred_label", "gt_label"], prefix="image_"),
            Specificity(fields=["pred_label", "gt_label"], prefix="image_"),
            SensitivityAtSpecificity(fields=image, prefix="image_", min_specificity=min_specificity),
            AUROC(fields=pixel, prefix="pixel_", strict=False),
            AveragePrecision(fields=pixel, prefix="pixel_", strict=False),
            PRO(fields=pixel, prefix="pixel_", strict=False),
            Dice(fields=["pred_mask", "gt_mask"], prefix="pixel_", strict=False),
            BestDice(fields=pixel, prefix="pixel_", strict=False),
        ],
    )


__all__ = [
    "medical_evaluator",
    "RANKING_METRICS",
    "RawScoreEvaluator",
    "ranks_scores",
    "use_raw_score_evaluator",
]
