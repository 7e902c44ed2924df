"""Fitting EA2D's per-position map statistics (``EA2D(standardize_maps=True)``) from normal images.

The statistics describe the *trained* model, so they are fitted after training and before the
maps are used: :class:`FitMapStatistics` (attached by :meth:`EA2D.configure_callbacks
<anomalib_ea2d.EA2D.configure_callbacks>` when ``standardize_maps`` is on) runs normal images
through the model in eval mode (the datamodule's held-out calibration images where it has them,
``calibration_split_ratio`` in :mod:`anomalib_ea2d.data.datamodules.calibration`: images the model
never trained on, as unseen as those it will score; else the training images) at the start of
each validation that follows training steps (normalisation and thresholds are then calibrated on
standardised maps), and whenever the maps are needed but no statistics exist. A model loaded
from a checkpoint keeps the checkpoint's statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

logger = logging.getLogger(__name__)


def _statistics_loader(trainer: Trainer) -> tuple[Any, str]:
    """The loader of the normal images to fit on and what they are (for the log line).

    The datamodule's held-out calibration images when it has them, else the training dataloader of
    the current fit, else the datamodule's.
    """
    datamodule = getattr(trainer, "datamodule", None)
    calibration = getattr(datamodule, "calibration_dataloader", None)
    loader = calibration() if callable(calibration) else None
    if loader is not None:
        return loader, "held-out normal calibration"
    loader = getattr(trainer, "train_dataloader", None)
    if loader is None and getattr(trainer, "datamodule", None) is not None:
        loader = trainer.datamodule.train_dataloader()
    if loader is None:
        msg = (
            "EA2D standardize_maps needs the normal training images to fit its map statistics, but this run has "
            "no training data; train the model first or load a checkpoint trained with standardize_maps."
        )
        raise RuntimeError(msg)
    return loader, "normal training"


def _images(pl_module: LightningModule, loader: Any) -> Iterator[torch.Tensor]:  # noqa: ANN401
    """Pre-processed training images on the module's device and dtype, batch by batch."""
    for batch in loader:
        images = batch.image if hasattr(batch, "image") else batch["image"]
        images = images.to(device=pl_module.device, dtype=pl_module.dtype)
        yield pl_module.pre_processor(images) if pl_module.pre_processor is not None else images


class FitMapStatistics(Callback):
    """Fit the model's map standardisation on normal images when it is stale or missing.

    The images are the datamodule's held-out calibration split where it has one, else the training
    images.

    Example:
        >>> from anomalib_ea2d import EA2D
        >>> model = EA2D(backbone="resnet18", pre_trained=False, standardize_maps=True)
        >>> any(isinstance(callback, FitMapStatistics) for callback in model.configure_callbacks())
        True
    """

    def __init__(self) -> None:
        self.stale = False

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:  # noqa: ANN401
        """The weights changed: the statistics no longer describe the model."""
        del trainer, pl_module, args
        self.stale = True

    def fit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fit the statistics now (calibration images, else training images)."""
        loader, source = _statistics_loader(trainer)
        count = pl_module.model.fit_map_statistics(_images(pl_module, loader))
        self.stale = False
        logger.info("Map statistics fitted on %d %s images (standardize_maps).", count, source)

    def _fit_if_needed(self, trainer: Trainer, pl_module: LightningModule) -> None:
        standardizer = pl_module.model.map_standardizer
        if standardizer is not None and (self.stale or not standardizer.fitted):
            self.fit(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fit before validation calibrates normalisation and thresholds on the maps."""
        self._fit_if_needed(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fit before testing if the model trained since (or never had statistics)."""
        self._fit_if_needed(trainer, pl_module)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fit before prediction if the model trained since (or never had statistics)."""
        self._fit_if_needed(trainer, pl_module)


__all__ = ["FitMapStatistics"]
