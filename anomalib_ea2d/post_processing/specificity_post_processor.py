"""Operating point at a chosen specificity, calibrated on normal validation images only.

anomalib's default post-processor sets its thresholds where F1 is best on the validation set, which
needs anomalous validation images and moves with their prevalence. Clinical users choose a
specificity instead: "flag at most 5 % of normal scans". :class:`SpecificityPostProcessor` sets the
image threshold so that a fraction ``image_fpr`` of the *normal* validation images score above it,
and the pixel threshold so that a fraction ``pixel_fpr`` of the pixels of normal validation images
do. Anomalous validation images, if any, are ignored for the thresholds (they still enter anomalib's
min-max score normalisation). Use it with any anomalib model::

    anomalib train --model Patchcore --data ... --model.post_processor anomalib_ea2d.SpecificityPostProcessor

With the post-processor's normalisation on (the default), normalised scores and maps are 0.5 at the
thresholds, as with anomalib's post-processor; ``pred_label``/``pred_mask`` are ``score > threshold``.
The sensitivity reached at that specificity is reported by the test metrics
(:func:`anomalib_ea2d.metrics.evaluator.medical_evaluator`: ``image_Sensitivity`` and ``image_Specificity``).

Scores of abnormal images usually lie far above the range of the normal validation images, where
the normalisation clips them all to 1.0. So that ranking metrics keep their order, the
post-processor makes the model's evaluator a :class:`~anomalib_ea2d.metrics.evaluator.RawScoreEvaluator`
(the same metrics, AUROC/AP computed on the raw scores) when it is anomalib's plain one.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from anomalib.data import Batch
from anomalib.post_processing import PostProcessor
from lightning.pytorch import LightningModule, Trainer

from anomalib_ea2d.metrics.evaluator import use_raw_score_evaluator

logger = logging.getLogger(__name__)

MAX_CALIBRATION_PIXELS = 4_000_000
"""Normal pixels kept for the pixel threshold; larger sets are subsampled with an even stride."""


def threshold_at_fpr(normal_scores: torch.Tensor, fpr: float) -> torch.Tensor:
    """Smallest threshold ``t`` among the scores with at most ``floor(fpr * n)`` normal scores ``> t``.

    Args:
        normal_scores: Scores of normal samples, any shape.
        fpr: Target fraction of normal samples flagged (``score > t``), in [0, 1).

    Returns:
        Scalar threshold (the ``n - floor(fpr * n)``-th smallest score).

    Example:
        >>> import torch
        >>> threshold_at_fpr(torch.arange(100.0), 0.05)  # 95..99 are above it: 5 %
        tensor(94.)
    """
    flat = normal_scores.detach().flatten().float()
    if flat.numel() == 0:
        msg = "No normal validation scores to calibrate the operating point; add normal images to the validation set."
        raise ValueError(msg)
    flagged = int(fpr * flat.numel())
    return flat.kthvalue(flat.numel() - flagged).values


class SpecificityPostProcessor(PostProcessor):
    """Post-processor whose thresholds flag a chosen fraction of *normal* validation images and pixels.

    Args:
        image_fpr: Fraction of normal validation images scored above the image threshold
            (1 - the target specificity; default 0.05, i.e. 95 % specificity).
        pixel_fpr: Fraction of the pixels of normal validation images above the pixel threshold.
        **kwargs: :class:`~anomalib.post_processing.PostProcessor` arguments (``enable_normalization``,
            ``enable_thresholding``, ``image_sensitivity``/``pixel_sensitivity``: keep 0.5 for the
            calibrated thresholds).

    Example:
        >>> import torch
        >>> from anomalib.data import ImageBatch
        >>> post = SpecificityPostProcessor(image_fpr=0.1)
        >>> batch = ImageBatch(
        ...     image=torch.zeros(10, 3, 8, 8), gt_label=torch.zeros(10, dtype=torch.bool),
        ...     pred_score=torch.arange(10.0), anomaly_map=torch.rand(10, 8, 8),
        ... )
        >>> post.on_validation_batch_end(None, None, batch)
        >>> post.on_validation_epoch_end(None, None)
        >>> float(post.image_threshold)  # one of ten normal images (score 9) is above it
        8.0
    """

    def __init__(self, image_fpr: float = 0.05, pixel_fpr: float = 0.05, **kwargs: Any) -> None:  # noqa: ANN401
        for name, value in (("image_fpr", image_fpr), ("pixel_fpr", pixel_fpr)):
            if not 0.0 <= value < 1.0:
                msg = f"SpecificityPostProcessor {name} must be in [0, 1), got {value}; e.g. 0.05 for 95 % specificity."
                raise ValueError(msg)
        super().__init__(**kwargs)
        self.image_fpr = image_fpr
        self.pixel_fpr = pixel_fpr
        self._normal_scores: list[torch.Tensor] = []
        self._normal_pixels: list[torch.Tensor] = []

    @property
    def _checkpoint_config_keys(self) -> tuple[str, ...]:
        return (*super()._checkpoint_config_keys, "image_fpr", "pixel_fpr")

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Have the model's evaluator rank raw, unclipped scores (``use_raw_score_evaluator``)."""
        super().setup(trainer, pl_module, stage)
        use_raw_score_evaluator(trainer, pl_module, self, stage)

    def on_validation_batch_end(
        self,
        trainer: Trainer | None,
        pl_module: LightningModule | None,
        outputs: Batch,
        *args: Any,  # noqa: ANN401
        **kwargs: Any,  # noqa: ANN401
    ) -> None:
        """Collect the scores and map values of the batch's normal images; update the normalisation."""
        del trainer, pl_module, args, kwargs
        if self.enable_thresholding:
            labels = outputs.gt_label
            if labels is None:
                msg = "SpecificityPostProcessor needs gt_label in the validation batches to pick the normal images."
                raise ValueError(msg)
            normal = ~labels.bool().flatten()
            if outputs.pred_score is not None:
                self._normal_scores.append(outputs.pred_score.detach().flatten()[normal].cpu())
            if outputs.anomaly_map is not None:
                self._normal_pixels.append(outputs.anomaly_map.detach()[normal].flatten().cpu())
        if self.enable_normalization:
            self._image_min_max_metric.update(outputs)
            self._pixel_min_max_metric.update(outputs)

    def on_validation_epoch_end(self, trainer: Trainer | None, pl_module: LightningModule | None) -> None:
        """Set the thresholds at the chosen false-positive rates and the normalisation statistics.

        Under DDP each process saw its share of the validation images: the normal scores of all
        processes are gathered first, so that every process sets the same thresholds.
        """
        if self.enable_thresholding:
            self._normal_scores = _gathered(self._normal_scores)
            self._normal_pixels = _gathered(self._normal_pixels)
            if self._normal_scores:
                scores = torch.cat(self._normal_scores)  # on the CPU; the buffers live on the model's device
                threshold = threshold_at_fpr(scores, self.image_fpr)
                self._image_threshold.copy_(threshold)
                logger.info(
                    "Operating point: image threshold %.6g flags %.1f %% of %d normal validation images "
                    "(target %.1f %%).",
                    float(threshold),
                    100.0 * float((scores > threshold).float().mean()),
                    scores.numel(),
                    100.0 * self.image_fpr,
                )
            if self._normal_pixels:
                pixels = torch.cat(self._normal_pixels)
                if pixels.numel() > MAX_CALIBRATION_PIXELS:
                    pixels = pixels[:: -(-pixels.numel() // MAX_CALIBRATION_PIXELS)]
                self._pixel_threshold.copy_(threshold_at_fpr(pixels, self.pixel_fpr))
            self._normal_scores, self._normal_pixels = [], []
        # The parent computes the min-max statistics; its F1 threshold metrics were never updated.
        super().on_validation_epoch_end(trainer, pl_module)


def _gathered(parts: list[torch.Tensor]) -> list[torch.Tensor]:
    """``parts`` of every process of a distributed run, in rank order (``parts`` itself in a single process)."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not distributed or torch.distributed.get_world_size() == 1:
        return parts
    everyone: list[list[torch.Tensor] | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(everyone, [part.cpu() for part in parts])
    return [part for rank_parts in everyone for part in rank_parts or []]


__all__ = ["SpecificityPostProcessor", "threshold_at_fpr"]
