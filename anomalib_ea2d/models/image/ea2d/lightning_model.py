"""Lightning module of EA2D: the paper's training recipe on top of :class:`~anomalib_ea2d.EA2DModel`.

The recipe (AdamW with two learning rates, weight decay, gradient-norm clipping, BatchNorm
momentum, training length in steps) lives in the init-arg defaults below, so it shows in
``anomalib train --model EA2D --print_config`` and configs only override it. Trainer flags the
user sets (``--trainer.max_steps``, ``--trainer.max_epochs``, ``--trainer.gradient_clip_val``)
take precedence over the recipe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from anomalib import LearningType
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import nn, optim

from anomalib_ea2d._hook import register
from anomalib_ea2d.callbacks.guards import WarnUncalibratedExport
from anomalib_ea2d.callbacks.image_scores import ImageScores
from anomalib_ea2d.callbacks.roi import Foreground, foreground_for
from anomalib_ea2d.models.components.score_reduction import ScoreReduction
from anomalib_ea2d.models.image.ea2d.checkpoint import OfflineCheckpointLoading
from anomalib_ea2d.models.image.ea2d.checkpoint_settings import check_checkpoint_settings
from anomalib_ea2d.models.image.ea2d.guards import ea2d_guards
from anomalib_ea2d.models.image.ea2d.inference_path import FusedInferenceSteps, InferencePath
from anomalib_ea2d.models.image.ea2d.loss import EA2DLoss
from anomalib_ea2d.models.image.ea2d.map_statistics import FitMapStatistics
from anomalib_ea2d.models.image.ea2d.recipe import (
    apply_training_length,
    check_init_args,
    encoder_learning_rate,
    evaluator_for,
)
from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel

logger = logging.getLogger(__name__)


class EA2D(OfflineCheckpointLoading, WarnUncalibratedExport, FusedInferenceSteps, AnomalibModule):
    """EA2D: Encoder-Attention-2Decoders reconstruction for medical anomaly detection.

    Args:
        backbone: ResNet encoder (``resnet50``, ``resnet18``, ``resnet34``, ``wide_resnet50_2``).
        pre_trained: Start the encoder from ImageNet weights (torchvision's, through timm).
        backbone_weights: Local torchvision/timm ResNet checkpoint to use instead of downloading.
        freeze_encoder_bn: Normalise with the encoder's running BatchNorm statistics and never update them (OCT2017).
        score_reduction: Per-view image score, ``"max"`` (default), ``"mean"`` or ``"topk"`` of the anomaly map.
        sigma: Gaussian smoothing of the anomaly map (0: none, as the paper).
        lr: Learning rate of attention and decoders.
        encoder_lr: Learning rate of the encoder.
        weight_decay: AdamW weight decay.
        gradient_clip_norm: Gradient-norm clipping, used unless ``--trainer.gradient_clip_val`` is set.
        bn_momentum: Momentum of every BatchNorm.
        max_steps: Training length in optimizer steps, used unless the trainer sets ``max_steps``
            or ``max_epochs``.
        view1_weight: Weight of the image view's reconstruction loss.
        view2_weight: Weight of the rotated view's reconstruction loss.
        contrastive_weight: Weight of the transformation-consistency term.
        image_size: Input size of the default pre-processor (a multiple of 32; int for square).
        metrics: Metrics of the default evaluator: ``"ea2d"`` (image AUROC/F1, pixel AUROC/PRO) or
            ``"anomalib"`` (anomalib's default image AUROC/F1, pixel AUROC/F1, the set the built-in
            models report; ``anomalib benchmark`` needs one metric set across all its models).
            ``"medical"``: :func:`~anomalib_ea2d.metrics.evaluator.medical_evaluator` (AUROC, AP, Dice,
            sensitivity at the operating point and at 95 % specificity).
        pre_processor: Pre-processor, or ``True`` for Resize(``image_size``) + ImageNet normalisation.
        post_processor: Post-processor, or ``True`` for anomalib's default.
        evaluator: Evaluator, or ``True`` for the metric set chosen by ``metrics``.
        visualizer: Visualizer, or ``True`` for anomalib's image visualizer.
        roi: Region of interest computed from the input (:class:`~anomalib_ea2d.callbacks.roi.Foreground`):
            ``None``/``False`` (the paper: whole image), ``True`` (default settings) or a dict of
            ``threshold``/``closing``/``erosion``; the map is zero outside it and the score taken inside.
        top_k_fraction: Fraction of the map averaged by ``score_reduction="topk"``.
        scratch_encoder_lr: From-scratch recipe: the encoder's learning rate when it starts from
            random weights (``pre_trained=False`` and no ``backbone_weights``), replacing
            ``encoder_lr`` (the paper's 1e-5 assumes ImageNet weights and leaves a random encoder
            nearly random). ``None`` (default): ``encoder_lr`` always. Logged when applied.
        standardize_maps: Standardise each view's anomaly map per position by the maps of the
            normal training images (fitted after training, before validation; saved in the
            checkpoint and the export), so that anatomy that is bright on every normal map (e.g.
            the brain's outline) stops dominating the score. For roughly aligned images. ``False``: the paper.
        inference_path: Network of the validation, test and predict steps: ``"fused"`` (default) a
            copy made by :meth:`EA2DModel.fuse() <anomalib_ea2d.EA2DModel.fuse>` at the start of
            each such run (BatchNorms folded, channels-last; faster, same outputs within 1e-5),
            ``"plain"`` the trainable modules themselves. Training, checkpoints and export always
            use the trainable modules (:mod:`anomalib_ea2d.models.image.ea2d.inference_path`).

    Example:
        >>> from anomalib_ea2d import EA2D
        >>> model = EA2D(backbone="resnet18", pre_trained=False)
        >>> model.learning_type.value
        'one_class'
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        pre_trained: bool = True,
        backbone_weights: str | Path | None = None,
        freeze_encoder_bn: bool = False,
        score_reduction: ScoreReduction = "max",
        sigma: float = 0.0,
        lr: float = 5e-4,
        encoder_lr: float = 1e-5,
        weight_decay: float = 1e-4,
        gradient_clip_norm: float = 1.0,
        bn_momentum: float = 0.01,
        max_steps: int = 2000,
        view1_weight: float = 0.5,
        view2_weight: float = 0.5,
        contrastive_weight: float = 0.5,
        image_size: int | tuple[int, int] = 256,
        metrics: Literal["ea2d", "anomalib", "medical"] = "ea2d",
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
        roi: bool | dict[str, float] | None = None,
        top_k_fraction: float = 0.01,
        scratch_encoder_lr: float | None = None,
        standardize_maps: bool = False,
        inference_path: InferencePath = "fused",
    ) -> None:
        size = check_init_args(locals())  # every init arg, by name
        if pre_processor is True:
            pre_processor = self.configure_pre_processor(size)
        if evaluator is True:
            evaluator = evaluator_for(metrics)
        if backbone_weights is not None:
            backbone_weights = str(backbone_weights)  # plain str in hparams: checkpoints load with weights_only
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        self.save_hyperparameters(ignore=["pre_processor", "post_processor", "evaluator", "visualizer"])
        self.model = EA2DModel(
            backbone=backbone,
            pre_trained=pre_trained,
            backbone_weights=backbone_weights,
            freeze_encoder_bn=freeze_encoder_bn,
            score_reduction=score_reduction,
            sigma=sigma,
            bn_momentum=bn_momentum,
            roi=foreground_for(self, roi),
            top_k_fraction=top_k_fraction,
            standardize_maps=standardize_maps,
        )
        self.loss = EA2DLoss(
            view1_weight=view1_weight, view2_weight=view2_weight, contrastive_weight=contrastive_weight
        )

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """EA2D's default metrics (``metrics="ea2d"``): image AUROC/F1 and, where masks exist, pixel AUROC and PRO."""
        return evaluator_for("ea2d")

    def set_region_of_interest(self, foreground: Foreground) -> None:
        """Limit anomaly maps and image scores to ``foreground`` (how the ``RegionOfInterest`` callback sets the ROI).

        The model applies it itself, per view and with its ``score_reduction``; see
        :class:`~anomalib_ea2d.callbacks.roi.AppliesRegionOfInterest`.
        """
        self.model.roi_foreground = foreground

    def pretrainable_encoder(self) -> nn.Module:
        """The ResNet encoder, for in-domain pretraining (:class:`~anomalib_ea2d.callbacks.EncoderPretraining`)."""
        return self.model.encoder

    @property
    def encoder_starts_random(self) -> bool:
        """Whether the encoder was built from random weights (``pre_trained=False`` and no ``backbone_weights``)."""
        return not self.hparams.pre_trained and self.hparams.backbone_weights is None

    def configure_optimizers(self) -> optim.Optimizer:
        """AdamW with one learning rate for the encoder and one for attention and decoders (constant).

        The encoder's is ``scratch_encoder_lr`` instead of ``encoder_lr`` when that is set and the
        encoder starts from random weights.
        """
        encoder = list(self.model.encoder.parameters())
        encoder_ids = {id(p) for p in encoder}
        rest = [p for p in self.model.parameters() if id(p) not in encoder_ids]
        encoder_lr = encoder_learning_rate(self.hparams)
        return optim.AdamW(
            [
                {"params": encoder, "lr": encoder_lr},
                {"params": rest, "lr": self.hparams.lr},
            ],
            weight_decay=self.hparams.weight_decay,
        )

    def configure_gradient_clipping(
        self,
        optimizer: optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the gradient norm to ``gradient_clip_norm`` unless the trainer sets its own clipping."""
        if gradient_clip_val is None:
            gradient_clip_val, gradient_clip_algorithm = self.hparams.gradient_clip_norm, "norm"
        if gradient_clip_val:
            self.clip_gradients(
                optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm
            )

    def setup(self, stage: str) -> None:
        """Apply the recipe's training length when the trainer was given none; say if the encoder starts random."""
        if stage == "fit" and self._trainer is not None:
            apply_training_length(self._trainer, self.hparams.max_steps)
            if self.encoder_starts_random and self._trainer.ckpt_path is None:
                logger.warning(
                    "EA2D encoder %s starts from random weights (pre_trained=False, no backbone_weights).",
                    self.hparams.backbone,
                )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Before a trainer loads ``ckpt_path`` into this model: stop if it was trained with other settings.

        (``EA2D.load_from_checkpoint`` builds the model from the checkpoint's own settings.)
        """
        if self._trainer is not None:
            check_checkpoint_settings(checkpoint, self.hparams, source=self._trainer.ckpt_path)
        super().on_load_checkpoint(checkpoint)

    def configure_callbacks(self) -> list[Callback]:
        """Anomalib's component callbacks, the safety guards and (``standardize_maps``) the map statistics' fitting.

        :class:`~anomalib_ea2d.callbacks.guards.ValidateAfterTraining` calibrates the post-processor after the
        last step of any run; :class:`~anomalib_ea2d.callbacks.guards.CalibrationGuard` stops test/predict of
        a model that was never calibrated; :class:`~anomalib_ea2d.callbacks.image_scores.ImageScores` writes
        ``image_scores.csv`` (unless the trainer has its own).
        """
        callbacks = super().configure_callbacks()
        components = list(callbacks) if isinstance(callbacks, Sequence) else [callbacks]
        statistics = [FitMapStatistics()] if self.hparams.get("standardize_maps") else []
        guards = ea2d_guards()
        trainer_callbacks = self._trainer.callbacks if self._trainer is not None else []
        scores = [] if any(isinstance(c, ImageScores) for c in trainer_callbacks) else [ImageScores()]
        return [*components, *statistics, *guards, *scores]

    def training_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Compute the weighted EA2D loss and log its terms."""
        del args, kwargs
        terms = self.loss.terms(self.model(batch.image.to(self.dtype)))  # anomalib batches are float32
        loss = self.loss.combine(terms)
        batch_size = batch.image.shape[0]
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train_{k}": v for k, v in terms.items()}, on_step=True, on_epoch=False, batch_size=batch_size)
        return {"loss": loss}

    def _predict(self, batch: Batch) -> STEP_OUTPUT:
        """The batch with the scores and anomaly maps of :attr:`inference_model` (see ``inference_path``)."""
        predictions = self.inference_model(batch.image.to(self.dtype))
        return batch.update(**predictions._asdict())

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Predict scores and anomaly maps for the batch (on the fused copy unless ``inference_path="plain"``)."""
        del args, kwargs
        return self._predict(batch)

    def test_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Predict scores and anomaly maps for a test batch, as :meth:`validation_step`."""
        del args, kwargs
        return self._predict(batch)

    def predict_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Predict scores and anomaly maps for a predict batch, as :meth:`validation_step`."""
        del args, kwargs
        return self._predict(batch)

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """No sanity validation; the recipe's clipping and length are applied by the module itself."""
        return {"num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        """EA2D learns from normal images only."""
        return LearningType.ONE_CLASS


class EA2DAnomalibMetrics(EA2D):
    """:class:`EA2D` that reports anomalib's default metrics (``metrics="anomalib"``), for ``anomalib benchmark``.

    ``anomalib benchmark`` tabulates one metric set and one set of init-arg names across all the
    models of a config, so EA2D cannot take an extra ``metrics`` init arg there; this class takes
    the same arguments as :class:`EA2D` except ``metrics``.

    Example:
        >>> model = EA2DAnomalibMetrics(backbone="resnet18", pre_trained=False)
        >>> [metric.name for metric in model.evaluator.test_metrics]
        ['image_AUROC', 'image_F1Score', 'pixel_AUROC', 'pixel_F1Score']
    """

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401
        # A checkpoint's hyper-parameters repeat metrics="anomalib"; any other value is a mistake.
        if kwargs.setdefault("metrics", "anomalib") != "anomalib":
            msg = "EA2DAnomalibMetrics always uses metrics='anomalib'; remove the metrics init arg or use EA2D."
            raise ValueError(msg)
        super().__init__(**kwargs)


register(EA2D)
register(EA2DAnomalibMetrics)
