"""``image_scores.csv``: every tested or predicted image's raw and normalised score, decision and label.

anomalib writes a heat map per image and logs the metrics, but no table of the scores behind them.
:class:`ImageScores` is a Lightning callback for any anomalib model that writes, after ``test`` and
after ``predict``, one row per image:

``image_path, score, normalized_score, prediction, label``

* ``score``: the model's **raw** score, before the post-processor (kept by
  :class:`~anomalib_ea2d.callbacks.raw_predictions.RawPredictions`); the image AUROC a
  :class:`~anomalib_ea2d.metrics.evaluator.RawScoreEvaluator` logs is the AUROC of this column;
* ``normalized_score``: the post-processor's scale (anomalib's min-max normalisation, clipped to
  ``[0, 1]``; the operating threshold at 0.5);
* ``prediction``: the post-processor's decision (1: anomalous), ``label``: the ground truth (empty
  where unknown).

EA2D attaches it to every trainer it runs in; for another model pass it as a callback
(``--trainer.callbacks+=anomalib_ea2d.ImageScores``). The file goes to
``<default_root_dir>/image_scores.csv`` (``output_dir`` to change).

Example:
    >>> ImageScores(output_dir="out").output_dir.name
    'out'
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_ea2d.callbacks.raw_predictions import RawPredictions, field_values, raw_score_values

logger = logging.getLogger(__name__)

SCORES_FILE = "image_scores.csv"
COLUMNS = ("image_path", "score", "normalized_score", "prediction", "label")


def _cell(value: Any) -> str:  # noqa: ANN401
    """Floats with enough digits to read float32 back exactly; booleans as 0/1; empty for unknown."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return f"{value:.9g}" if isinstance(value, float) else str(int(value))


class ImageScores(Callback):
    """Write ``image_scores.csv`` (raw and normalised score, decision, label per image) after test/predict.

    Args:
        output_dir: Folder of the file; default the trainer's ``default_root_dir``.
    """

    def __init__(self, output_dir: str | Path | None = None) -> None:
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.rows: list[tuple[Any, ...]] = []
        self._pending: tuple[Any, list[float]] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Make sure the raw scores are kept before the post-processor."""
        del stage
        RawPredictions.attach(trainer, pl_module)

    def _start(self) -> None:
        self.rows, self._pending = [], None

    def _settle(self) -> None:
        """Read the decisions of the last batch, which the callbacks after this one have post-processed."""
        if self._pending is None:
            return
        batch, raw = self._pending
        size = len(raw)
        paths = list(getattr(batch, "image_path", None) or [""] * size)
        columns = [field_values(batch, name, size) for name in ("pred_score", "pred_label", "gt_label")]
        self.rows += list(zip(paths, raw, *columns, strict=True))
        self._pending = None

    def _collect(self, trainer: Trainer, outputs: Any) -> None:  # noqa: ANN401
        self._settle()
        if outputs is None or getattr(outputs, "pred_score", None) is None:
            return
        self._pending = (outputs, raw_score_values(trainer, outputs))

    def _write(self, trainer: Trainer) -> None:
        self._settle()
        if not self.rows:
            return
        folder = self.output_dir or Path(trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / SCORES_FILE
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows([_cell(value) if i else value for i, value in enumerate(row)] for row in self.rows)
        logger.info("Wrote %d image scores to %s.", len(self.rows), path)
        self.rows = []

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new table."""
        self._start()

    on_predict_epoch_start = on_test_epoch_start

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:  # noqa: ANN401
        """Keep the batch's raw scores; its decisions are read once the post-processor has run."""
        self._collect(trainer, outputs)

    on_predict_batch_end = on_test_batch_end

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the table."""
        self._write(trainer)

    on_predict_epoch_end = on_test_epoch_end


__all__ = ["COLUMNS", "SCORES_FILE", "ImageScores"]
