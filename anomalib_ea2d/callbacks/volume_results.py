"""Per-volume results of ``test``/``predict`` on :class:`~anomalib_ea2d.data.MedicalVolumes`.

:class:`VolumeResults` is a Lightning callback that ``MedicalVolumes`` attaches to the trainer
running it (``anomalib test``, ``anomalib predict``, ``Engine.test``/``predict``; nothing to add on
the command line). It collects every slice's score and anomaly map on two scales, the same in
``test`` and ``predict``:

* ``score``: the model's **raw** score (before the post-processor; what to compare between runs and
  models, and what ``image_AUROC``/``volume_AUROC`` rank);
* ``normalized_score``: the post-processor's scale (anomalib's min-max normalisation, clipped to
  ``[0, 1]``; the operating threshold is at 0.5), equal to ``score`` when the post-processor does not
  normalise.

Per volume:

* the volume score: the maximum of its slice scores (``volume_score="max"``), or the mean of its
  ``top_k`` highest (``"top_k_mean"``), on each scale;
* ``<results dir>/volumes/<volume name>_anomaly_map.nii.gz``: float32, the input's shape and
  affine, on the normalised scale (0.5 = the pixel threshold); each slice map resized (bilinear)
  back to the slice's grid and put back where the slice came from; slices that were not scored are 0;
* ``<results dir>/volumes/volume_scores.csv``: ``volume, score, normalized_score, prediction, label,
  slices, path``, and ``slice_scores.csv``: ``volume, slice, score, normalized_score, prediction,
  label`` (slice numbers as in :mod:`.orientation`; ``label`` 1 where the slice's mask holds lesion
  voxels; ``prediction`` 1 where the normalised score is above the operating threshold; empty
  where unknown);
* for anomalib's image visualiser, which reads the picture behind each ``image_path``: the callback
  runs just before it, writes each scored slice as an 8-bit picture ``<volume name>/<axis>_<index>.png``
  in a temporary folder (removed at the end of the epoch) and points the batch's ``image_path`` there,
  so the visualiser files its heat maps under ``<results dir>/images/<volume name>/``;
* in ``test``, ``volume_AUROC`` and ``volume_AveragePrecision`` of the raw volume scores (when both
  labels are present), logged next to anomalib's image and pixel metrics.

The raw values come from :class:`~anomalib_ea2d.callbacks.raw_predictions.RawPredictions`, which the callback puts
before the model's post-processor; the callback itself sits after it, whatever order Lightning left
the callbacks in from an earlier ``fit``.

Example:
    >>> import numpy as np
    >>> round(reduce_scores(np.array([0.1, 0.9, 0.4, 0.8]), "top_k_mean", top_k=2), 6)
    0.85
"""

from __future__ import annotations

import csv
import logging
import math
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import nibabel as nib
import numpy as np
import torch
from anomalib.post_processing import PostProcessor
from anomalib.visualization import ImageVisualizer
from lightning.pytorch import Callback, LightningModule, Trainer
from PIL import Image
from torch.nn import functional as F  # noqa: N812
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from anomalib_ea2d.callbacks.raw_predictions import RawPredictions, field_values
from anomalib_ea2d.data.volumes.dataset import parse_slice_path

if TYPE_CHECKING:
    from anomalib_ea2d.data.volumes.records import VolumeRecord

logger = logging.getLogger(__name__)

VolumeScore = Literal["max", "top_k_mean"]
SCORES_FILE = "volume_scores.csv"
SLICE_SCORES_FILE = "slice_scores.csv"
MAP_SUFFIX = "_anomaly_map.nii.gz"


def reduce_scores(scores: np.ndarray, volume_score: VolumeScore, top_k: int = 3) -> float:
    """Volume score from slice scores: the maximum, or the mean of the ``top_k`` highest."""
    if volume_score == "max":
        return float(np.max(scores))
    return float(np.mean(np.sort(scores)[::-1][:top_k]))


def write_anomaly_map(record: VolumeRecord, maps: dict[int, np.ndarray], path: Path) -> None:
    """Write slice maps into a zero volume of the input's shape and save it with the input's affine."""
    volume = np.zeros(record.source.shape, dtype=np.float32)
    for index, plane in maps.items():
        record.geometry.write(volume, index, plane.astype(np.float32))
    image = nib.Nifti1Image(volume, record.source.affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(record.source.affine, code=1)
    image.set_sform(record.source.affine, code=1)
    nib.save(image, path)


@dataclass
class SliceResult:
    """One scored slice: raw and normalised score, the operating point's decision, the slice's label."""

    score: float
    normalized_score: float
    prediction: int | None
    label: int | None


def _cell(value: float | int | None) -> str:
    """A CSV cell: float32 values with enough digits to read back exactly; empty for unknown."""
    if value is None:
        return ""
    return f"{value:.9g}" if isinstance(value, float) else str(value)


def rank_in_unit_interval(scores: torch.Tensor) -> torch.Tensor:
    """Scores replaced by their dense rank scaled to ``[0, 1]``: same order and ties, any range.

    torchmetrics takes scores outside ``[0, 1]`` for logits and applies a sigmoid, which saturates
    (ties) far from 0; ranking metrics only need the order.

    Example:
        >>> rank_in_unit_interval(torch.tensor([40.0, -3.0, 40.0, 7.0])).tolist()
        [1.0, 0.0, 1.0, 0.5]
    """
    unique, ranks = torch.unique(scores, return_inverse=True)
    return ranks.double() / max(unique.numel() - 1, 1)


def score_threshold(pl_module: LightningModule | None) -> float | None:
    """The post-processor's image threshold on the scale of its output scores (``None`` if uncalibrated)."""
    post = getattr(pl_module, "post_processor", None)
    if not isinstance(post, PostProcessor) or not post.enable_thresholding:
        return None
    threshold = post.normalized_image_threshold if post.enable_normalization else post.image_threshold
    if post.enable_normalization and torch.isnan(post.image_min).item():
        return None
    value = float(threshold)
    return None if math.isnan(value) else value


class VolumeResults(Callback):
    """Volume scores, volume metrics, ``volume_scores.csv``, ``slice_scores.csv`` and NIfTI maps after test/predict.

    Args:
        volume_score: ``"max"`` of the slice scores or ``"top_k_mean"``.
        top_k: Slices averaged by ``"top_k_mean"``.
        write_maps: Write one ``<volume>_anomaly_map.nii.gz`` per volume.
        output_dir: Where to write; default ``<trainer.default_root_dir>/volumes``.

    Example:
        >>> results = VolumeResults(volume_score="top_k_mean", top_k=2)
        >>> results.volume_score, results.top_k
        ('top_k_mean', 2)
    """

    def __init__(
        self,
        volume_score: VolumeScore = "max",
        top_k: int = 3,
        write_maps: bool = True,
        output_dir: str | Path | None = None,
    ) -> None:
        if volume_score not in {"max", "top_k_mean"}:
            msg = f"volume_score must be 'max' or 'top_k_mean', got {volume_score!r}."
            raise ValueError(msg)
        if top_k < 1:
            msg = f"top_k must be >= 1, got {top_k}."
            raise ValueError(msg)
        self.volume_score = volume_score
        self.top_k = top_k
        self.write_maps = write_maps
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.scores: dict[str, float] = {}
        self.normalized_scores: dict[str, float] = {}
        self._slices: dict[str, dict[int, SliceResult]] = {}
        self._maps: dict[str, dict[int, np.ndarray]] = {}
        self._pictures: Path | None = None
        self._threshold: float | None = None

    def _records(self, trainer: Trainer) -> dict[str, VolumeRecord]:
        return getattr(trainer.datamodule, "volume_records", {})

    def _dir(self, trainer: Trainer) -> Path:
        folder = self.output_dir or Path(trainer.default_root_dir) / "volumes"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _start(self, pl_module: LightningModule) -> None:
        self.scores, self.normalized_scores, self._slices, self._maps = {}, {}, {}, {}
        self._threshold = score_threshold(pl_module)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new collection."""
        self._start(pl_module)

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new collection."""
        self._start(pl_module)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:  # noqa: ANN401
        """Collect the batch's slice scores and maps."""
        self._collect(trainer, outputs)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:  # noqa: ANN401
        """Collect the batch's slice scores and maps."""
        self._collect(trainer, outputs)

    def attach(self, trainer: Trainer) -> None:
        """Put this callback right after the model's post-processor (before anomalib's image visualiser).

        Called at every ``setup`` of the datamodule: Lightning appends the model's callbacks anew at
        each run, so a position from an earlier run would put it before the post-processor.
        """
        callbacks = trainer.callbacks
        if self in callbacks:
            callbacks.remove(self)
        pl_module = trainer.lightning_module
        post = getattr(pl_module, "post_processor", None)
        if post in callbacks:
            position = callbacks.index(post) + 1
        else:
            visualizers = [i for i, c in enumerate(callbacks) if isinstance(c, ImageVisualizer)]
            position = visualizers[0] if visualizers else len(callbacks)
        callbacks.insert(position, self)
        RawPredictions.attach(trainer, pl_module)

    def _slice_pictures(self, trainer: Trainer, outputs: Any, records: dict[str, VolumeRecord]) -> None:  # noqa: ANN401
        """Write each slice as a picture for the visualiser and point ``image_path`` at it."""
        if not any(isinstance(c, ImageVisualizer) for c in trainer.callbacks):
            return
        for i, image_path in enumerate(outputs.image_path):
            key, index = parse_slice_path(image_path)
            record = records.get(key)
            if record is None:
                continue
            if self._pictures is None:
                self._pictures = Path(tempfile.mkdtemp(prefix="ea2d-slices-"))
            folder = self._pictures / record.name
            folder.mkdir(parents=True, exist_ok=True)
            picture = folder / Path(image_path).name
            Image.fromarray(np.round(record.image(index) * 255).astype(np.uint8)).save(picture)
            outputs.image_path[i] = str(picture)

    def _collect(self, trainer: Trainer, outputs: Any) -> None:  # noqa: ANN401
        records = self._records(trainer)
        if outputs is None or getattr(outputs, "pred_score", None) is None or not records:
            return
        self._collect_scores(trainer, outputs, records)
        self._slice_pictures(trainer, outputs, records)

    def _collect_scores(self, trainer: Trainer, outputs: Any, records: dict[str, VolumeRecord]) -> None:  # noqa: ANN401
        size = len(outputs.image_path)
        raw = RawPredictions.find(trainer)
        raw_batch = raw.view(outputs) if raw is not None else outputs
        scores = [float(v) for v in field_values(raw_batch, "pred_score", size)]
        normalized = [float(v) for v in field_values(outputs, "pred_score", size)]
        predictions = field_values(outputs, "pred_label", size)
        labels = field_values(outputs, "gt_label", size)
        maps = outputs.anomaly_map
        if maps is not None:
            maps = maps.detach().float().cpu()
            maps = maps if maps.ndim == 4 else maps.unsqueeze(1)
        for i, image_path in enumerate(outputs.image_path):
            key, index = parse_slice_path(image_path)
            record = records.get(key)
            if record is None:
                continue
            prediction = None if predictions[i] is None else int(bool(predictions[i]))
            label = None if labels[i] is None else int(labels[i])
            self._slices.setdefault(key, {})[index] = SliceResult(scores[i], normalized[i], prediction, label)
            if maps is not None and self.write_maps:
                plane = F.interpolate(maps[i : i + 1], size=record.geometry.slice_shape, mode="bilinear")
                self._maps.setdefault(key, {})[index] = plane[0, 0].numpy()
            if len(self._slices[key]) == len(record.slices):
                self._finish(trainer, key, record)

    def _finish(self, trainer: Trainer, key: str, record: VolumeRecord) -> None:
        slices = self._slices[key].values()
        self.scores[key] = reduce_scores(np.array([s.score for s in slices]), self.volume_score, self.top_k)
        self.normalized_scores[key] = reduce_scores(
            np.array([s.normalized_score for s in slices]), self.volume_score, self.top_k
        )
        maps = self._maps.pop(key, None)
        if maps is not None:
            write_anomaly_map(record, maps, self._dir(trainer) / f"{record.name}{MAP_SUFFIX}")

    def _volume_prediction(self, key: str) -> int | None:
        if self._threshold is None:
            return None
        return int(self.normalized_scores[key] > self._threshold)

    def _end(self, trainer: Trainer) -> tuple[list[float], list[int]]:
        if self._pictures is not None:
            shutil.rmtree(self._pictures, ignore_errors=True)
            self._pictures = None
        records = self._records(trainer)
        for key in list(self._slices):
            if key not in self.scores:  # incomplete volume (e.g. a limited number of batches)
                self._finish(trainer, key, records[key])
        if not self.scores:
            return [], []
        path = self._dir(trainer) / SCORES_FILE
        scores, labels = [], []
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["volume", "score", "normalized_score", "prediction", "label", "slices", "path"])
            for key, score in self.scores.items():
                record = records[key]
                label = None if record.label_index < 0 else record.label_index
                writer.writerow(
                    [record.name, _cell(score), _cell(self.normalized_scores[key]), _cell(self._volume_prediction(key)),
                     _cell(label), len(self._slices[key]), key]
                )  # fmt: skip
                if label is not None:
                    scores.append(score)
                    labels.append(label)
        with (path.parent / SLICE_SCORES_FILE).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["volume", "slice", "score", "normalized_score", "prediction", "label"])
            for key in self.scores:
                for index, result in sorted(self._slices[key].items()):
                    writer.writerow(
                        [records[key].name, index, _cell(result.score), _cell(result.normalized_score),
                         _cell(result.prediction), _cell(result.label)]
                    )  # fmt: skip
        logger.info("Wrote %d volume scores to %s.", len(self.scores), path)
        return scores, labels

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the scores and log ``volume_AUROC`` and ``volume_AveragePrecision`` of the raw volume scores."""
        scores, labels = self._end(trainer)
        if len(set(labels)) == 2:
            preds, target = rank_in_unit_interval(torch.tensor(scores, dtype=torch.float64)), torch.tensor(labels)
            metrics = {
                "volume_AUROC": binary_auroc(preds, target, thresholds=None),
                "volume_AveragePrecision": binary_average_precision(preds, target, thresholds=None),
            }
            with warnings.catch_warnings():  # Lightning's "no logger configured": the metric is still returned
                warnings.filterwarnings("ignore", message=r".*but have no logger configured.*")
                for name, value in metrics.items():
                    pl_module.log(name, value.float(), prog_bar=False)
        elif scores:
            logger.warning("volume_AUROC needs normal and abnormal test volumes; only one kind was tested.")

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the scores."""
        self._end(trainer)


__all__ = [
    "MAP_SUFFIX",
    "SCORES_FILE",
    "SLICE_SCORES_FILE",
    "SliceResult",
    "VolumeResults",
    "VolumeScore",
    "rank_in_unit_interval",
    "reduce_scores",
    "score_threshold",
    "write_anomaly_map",
]
