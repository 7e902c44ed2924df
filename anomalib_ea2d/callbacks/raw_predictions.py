"""The model's raw scores and maps of each test/predict batch, kept before anomalib's post-processor changes them.

anomalib's post-processor normalises ``pred_score`` and ``anomaly_map`` in place and clips them to
``[0, 1]``, so every score above the validation range becomes 1.0: their order is lost, and
ranking metrics (AUROC, AP, sensitivity at a specificity) computed on them tie where the model did
not. :class:`RawPredictions` is a Lightning callback placed just before the module's post-processor
in the trainer's callbacks: at the end of each test/predict batch it keeps the raw ``pred_score``
and ``anomaly_map``, and :meth:`RawPredictions.view` gives a copy of the (post-processed) batch that
carries them again. It works with any anomalib model and post-processor; the project's evaluator
(:class:`~anomalib_ea2d.metrics.evaluator.RawScoreEvaluator`) and the per-volume results use it.

Example:
    >>> import torch
    >>> from anomalib.data import ImageBatch
    >>> raw = RawPredictions()
    >>> batch = ImageBatch(image=torch.zeros(2, 3, 8, 8), pred_score=torch.tensor([3.0, 7.0]))
    >>> raw.keep(batch)
    >>> batch.pred_score = torch.tensor([1.0, 1.0])  # what a clipping post-processor leaves
    >>> raw.view(batch).pred_score
    tensor([3., 7.])
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

RAW_FIELDS = ("pred_score", "anomaly_map")
"""The batch fields a post-processor rescales."""


def field_values(batch: Any, name: str, size: int) -> list[Any]:  # noqa: ANN401
    """``batch.name`` as one Python value per item (all ``None`` when the field is missing or has another size).

    Example:
        >>> from types import SimpleNamespace
        >>> field_values(SimpleNamespace(gt_label=torch.tensor([0, 1])), "gt_label", 2)
        [0, 1]
        >>> field_values(SimpleNamespace(), "pred_label", 2)
        [None, None]
    """
    value = getattr(batch, name, None)
    if not isinstance(value, torch.Tensor) or value.numel() != size:
        return [None] * size
    return value.detach().reshape(-1).cpu().tolist()


def raw_score_values(trainer: Trainer, outputs: Any) -> list[float]:  # noqa: ANN401
    """The raw ``pred_score`` of each item of ``outputs`` (kept by :class:`RawPredictions`, else the batch's own)."""
    raw = RawPredictions.find(trainer)
    scores = raw.raw(outputs, "pred_score") if raw is not None else outputs.pred_score
    return scores.detach().reshape(-1).float().cpu().tolist()


class RawPredictions(Callback):
    """Keep each test/predict batch's raw ``pred_score`` and ``anomaly_map`` before post-processing.

    Attach it with :meth:`attach`, which puts it before the module's post-processor (Lightning
    calls the callbacks of a batch in list order).
    """

    def __init__(self) -> None:
        self._batch_id: int | None = None
        self._raw: dict[str, torch.Tensor | None] = {}

    def keep(self, batch: Any) -> None:  # noqa: ANN401
        """Remember ``batch``'s raw fields (copies, so later in-place changes cannot reach them)."""
        self._batch_id = id(batch)
        self._raw = {}
        for name in RAW_FIELDS:
            value = getattr(batch, name, None)
            self._raw[name] = value.detach().clone() if isinstance(value, torch.Tensor) else value

    def view(self, batch: Any) -> Any:  # noqa: ANN401
        """A shallow copy of ``batch`` whose ``pred_score``/``anomaly_map`` are the kept raw values.

        ``batch`` itself when it is not the batch last kept (nothing was post-processed behind our back).
        """
        if self._batch_id != id(batch):
            return batch
        raw = copy.copy(batch)
        for name, value in self._raw.items():
            if value is not None:
                setattr(raw, name, value)
        return raw

    def raw(self, batch: Any, name: str) -> torch.Tensor | None:  # noqa: ANN401
        """The raw field ``name`` of ``batch`` (the batch's own value when it was not kept)."""
        return getattr(self.view(batch), name, None)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:  # noqa: ANN401
        """Keep the batch's raw scores."""
        del trainer, pl_module, args
        if outputs is not None:
            self.keep(outputs)

    on_predict_batch_end = on_test_batch_end

    @staticmethod
    def find(trainer: Trainer | None) -> RawPredictions | None:
        """The instance attached to ``trainer``, if any."""
        if trainer is None:
            return None
        return next((c for c in trainer.callbacks if isinstance(c, RawPredictions)), None)

    @classmethod
    def attach(cls, trainer: Trainer, pl_module: LightningModule | None) -> RawPredictions:
        """Put one instance in ``trainer.callbacks`` before ``pl_module``'s post-processor; return it.

        Safe to call from a callback's ``setup`` (which Lightning runs while walking the list): an
        instance already in place is left where it is.
        """
        callbacks = trainer.callbacks
        instance = cls.find(trainer) or cls()
        post_processor = getattr(pl_module, "post_processor", None)
        target = callbacks.index(post_processor) if post_processor in callbacks else 0
        if instance in callbacks:
            if callbacks.index(instance) <= target:
                return instance
            callbacks.remove(instance)
            target = callbacks.index(post_processor) if post_processor in callbacks else 0
        callbacks.insert(target, instance)
        return instance


__all__ = ["RAW_FIELDS", "RawPredictions", "field_values", "raw_score_values"]
