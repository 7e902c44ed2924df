"""What the EA2D Lightning module needs besides its steps: argument checks, training length, learning rates.

The recipe's numbers live in :class:`~anomalib_ea2d.EA2D`'s init-arg defaults; the functions here
only check them, choose the evaluator a ``metrics`` name stands for, apply the recipe's
``max_steps`` when the trainer was given no length, and pick the encoder's learning rate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from anomalib.metrics import AUROC, PRO, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import Timer

from anomalib_ea2d.metrics.evaluator import RawScoreEvaluator, medical_evaluator
from anomalib_ea2d.models.image.ea2d.inference_path import check_inference_path
from anomalib_ea2d.models.image.ea2d.torch_model import INPUT_MULTIPLE

logger = logging.getLogger(__name__)

LIGHTNING_DEFAULT_MAX_EPOCHS = 1000
"""What Lightning falls back to when neither ``max_epochs`` nor ``max_steps`` is given."""

METRIC_SETS: tuple[str, ...] = ("ea2d", "anomalib", "medical")
"""Names of the default evaluator's metric sets (``EA2D(metrics=...)``)."""


def _positive(name: str, value: float | None, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        bound = ">= 0" if allow_zero else "> 0"
        msg = f"EA2D {name} must be {bound}, got {value}; fix it in the model's init args."
        raise ValueError(msg)


def check_init_args(args: Mapping[str, Any]) -> tuple[int, int]:
    """Raise a one-sentence ``ValueError`` for an impossible recipe value; return ``image_size`` as (h, w).

    Example:
        >>> check_init_args({"lr": 5e-4, "image_size": 128})
        (128, 128)
        >>> check_init_args({"lr": -1.0, "image_size": 128})
        Traceback (most recent call last):
        ...
        ValueError: EA2D lr must be > 0, got -1.0; fix it in the model's init args.
    """
    _positive("lr", args.get("lr"))
    _positive("max_steps", args.get("max_steps"))
    for name in ("encoder_lr", "scratch_encoder_lr", "weight_decay", "gradient_clip_norm"):
        _positive(name, args.get(name), allow_zero=True)
    check_inference_path(args.get("inference_path", "fused"))
    if args.get("metrics", "ea2d") not in METRIC_SETS:
        msg = f"EA2D metrics must be 'ea2d', 'anomalib' or 'medical', got {args['metrics']!r}."
        raise ValueError(msg)
    image_size = args["image_size"]
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(side <= 0 or side % INPUT_MULTIPLE for side in size):
        msg = f"EA2D image_size must be positive multiples of {INPUT_MULTIPLE}, got {image_size}; e.g. 128 or 256."
        raise ValueError(msg)
    return size[0], size[1]


def ea2d_evaluator() -> Evaluator:
    """EA2D's default metric set: image AUROC/F1 and, where masks exist, pixel AUROC and PRO.

    Ranking metrics see the raw scores (:class:`~anomalib_ea2d.metrics.RawScoreEvaluator`).

    Example:
        >>> [metric.name for metric in ea2d_evaluator().test_metrics]
        ['image_AUROC', 'image_F1Score', 'pixel_AUROC', 'pixel_PRO']
    """
    return RawScoreEvaluator(
        test_metrics=[
            AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
            F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
            AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            PRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
        ],
    )


def evaluator_for(metrics: str) -> Evaluator:
    """The evaluator a metric-set name (``EA2D(metrics=...)``) stands for; the one place EA2D chooses it.

    ``"ea2d"``: :func:`ea2d_evaluator`; ``"anomalib"``: anomalib's default (image AUROC/F1, pixel
    AUROC/F1); ``"medical"``: :func:`~anomalib_ea2d.metrics.medical_evaluator`.

    Example:
        >>> [metric.name for metric in evaluator_for("anomalib").test_metrics]
        ['image_AUROC', 'image_F1Score', 'pixel_AUROC', 'pixel_F1Score']
    """
    if metrics == "anomalib":
        return AnomalibModule.configure_evaluator()
    if metrics == "medical":
        return medical_evaluator()
    if metrics == "ea2d":
        return ea2d_evaluator()
    msg = f"EA2D metrics must be one of {METRIC_SETS}, got {metrics!r}."
    raise ValueError(msg)


def apply_training_length(trainer: Trainer, max_steps: int) -> None:
    """Train for the recipe's ``max_steps`` unless the trainer was given a length (steps, epochs or time)."""
    fit_loop = trainer.fit_loop
    user_set_length = (
        fit_loop.epoch_loop.max_steps != -1
        or fit_loop.max_epochs not in {None, LIGHTNING_DEFAULT_MAX_EPOCHS}
        or any(isinstance(callback, Timer) for callback in trainer.callbacks)  # Trainer(max_time=...)
    )
    if not user_set_length:
        fit_loop.epoch_loop.max_steps = max_steps
        fit_loop.max_epochs = -1
        logger.info("EA2D trains for %d steps (model max_steps; set --trainer.max_steps to change).", max_steps)


def encoder_learning_rate(hparams: Mapping[str, Any]) -> float:
    """``encoder_lr``, or ``scratch_encoder_lr`` when that is set and the encoder starts from random weights.

    Example:
        >>> encoder_learning_rate({"encoder_lr": 1e-5, "scratch_encoder_lr": None, "pre_trained": False})
        1e-05
    """
    scratch_lr = hparams.get("scratch_encoder_lr")
    if scratch_lr is None or hparams.get("pre_trained") or hparams.get("backbone_weights") is not None:
        return hparams["encoder_lr"]
    logger.info(
        "EA2D encoder starts from random weights: from-scratch recipe, encoder lr %g instead of %g "
        "(scratch_encoder_lr).",
        scratch_lr,
        hparams["encoder_lr"],
    )
    return scratch_lr


__all__ = [
    "METRIC_SETS",
    "apply_training_length",
    "check_init_args",
    "ea2d_evaluator",
    "encoder_learning_rate",
    "evaluator_for",
]
