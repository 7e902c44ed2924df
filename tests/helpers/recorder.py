"""A callback that records what a model returned for each test batch, before and after post-processing."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from tests.helpers.ranking import auroc


class TestRecorder(Callback):
    """Keeps each test batch's raw ``pred_score``/``anomaly_map`` and the batch itself.

    Pass it in the trainer's callbacks: Lightning runs those before the model's own (the post-processor).

    The batch object is changed in place by the callbacks after it (post-processor), so after the
    run :attr:`batches` hold the post-processed fields (``pred_label``, ``pred_mask``).
    """

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.raw_scores: list[torch.Tensor] = []
        self.raw_maps: list[torch.Tensor] = []
        self.batches: list[Any] = []

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.raw_scores, self.raw_maps, self.batches = [], [], []

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:
        post = pl_module.post_processor
        assert trainer.callbacks.index(self) < trainer.callbacks.index(post), "must run before the post-processor"
        self.raw_scores.append(outputs.pred_score.detach().reshape(-1).clone())
        self.raw_maps.append(outputs.anomaly_map.detach().clone())
        self.batches.append(outputs)

    def column(self, name: str) -> np.ndarray:
        """The post-processed field ``name`` of every image, in test order."""
        return torch.cat([getattr(b, name).detach().reshape(-1).float() for b in self.batches]).numpy()

    def image_auroc(self) -> float:
        """AUROC of the raw image scores, by hand."""
        scores, labels = torch.cat(self.raw_scores).numpy(), self.column("gt_label").astype(bool)
        return auroc(scores[~labels], scores[labels])

    def pixel_auroc(self) -> float:
        """AUROC of the raw map values against the masks, by hand."""
        maps = torch.cat([m.reshape(m.shape[0], -1) for m in self.raw_maps]).numpy().ravel()
        masks = torch.cat([b.gt_mask.reshape(b.gt_mask.shape[0], -1) for b in self.batches]).numpy().ravel()
        return auroc(maps[~masks.astype(bool)], maps[masks.astype(bool)])
