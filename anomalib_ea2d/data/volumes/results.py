"""Per-volume results of ``test``/``predict`` on :class:`~anomalib_ea2d.data.MedicalVolumes`.

:class:`VolumeResults` is a Lightning callback that ``MedicalVolumes`` attaches to the trainer
running it (``anomalib test``, ``anomalib predict``, ``Engine.test``/``predict``; nothing to add on
the command line). It collects every slice's score and anomaly map (after the model's
post-processing, so normalised to ``[0, 1]`` when normalisation is on) and, per volume:

* the volume score: the maximum of its slice scores (``volume_score="max"``), or the mean of its
  ``top_k`` highest (``"top_k_mean"``);
* ``<results dir>/volumes/<volume name>_anomaly_map.nii.gz``: float32, the input's shape and
  affine; each slice map resized (bilinear) back to the slice's grid and put back where the slice
  came from; slices that were not scored are 0;
* ``<results dir>/volumes/volume_scores.csv``: ``volume, score, label, slices, path``, and
  ``slice_scores.csv``: ``volume, slice, score`` (slice numbers as in :mod:`.orientation`);
* for anomalib's image visualiser, which reads the picture behind each ``image_path``: the callback
  runs just before it, writes each scored slice as an 8-bit picture ``<volume name>/<axis>_<index>.png``
  in a temporary folder (removed at the end of the epoch) and points the batch's ``image_path`` there,
  so the visualiser files its heat maps under ``<results dir>/images/<volume name>/``;
* in ``test``, ``volume_AUROC`` (when both labels are present), logged next to anomalib's image and
  pixel metrics.

Example:
    >>> import numpy as np
    >>> round(reduce_scores(np.array([0.1, 0.9, 0.4, 0.8]), "top_k_mean", top_k=2), 6)
    0.85
"""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import nibabel as nib
import numpy as np
import torch
from anomalib.visualization import ImageVisualizer
from lightning.pytorch import Callback, LightningModule, Trainer
from PIL import Image
from torch.nn import functional as F  # noqa: N812
from torchmetrics.functional.classification import binary_auroc

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


class VolumeResults(Callback):
    """Volume scores, ``volume_AUROC``, ``volume_scores.csv`` and NIfTI anomaly maps after test/predict.

    Args:
        volume_score: ``"max"`` of the slice scores or ``"top_k_mean"``.
        top_k: Slices averaged by ``"top_k_mean"``.
        write_maps: Write one ``<volume>_anomaly_map.nii.gz`` per volume.
        output_dir: Where to write; default ``<trainer.default_root_dir>/volumes``.
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
        self._slice_scores: dict[str, dict[int, float]] = {}
        self._maps: dict[str, dict[int, np.ndarray]] = {}
        self._pictures: Path | None = None

    def _records(self, trainer: Trainer) -> dict[str, VolumeRecord]:
        return getattr(trainer.datamodule, "volume_records", {})

    def _dir(self, trainer: Trainer) -> Path:
        folder = self.output_dir or Path(trainer.default_root_dir) / "volumes"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _reset(self) -> None:
        self.scores, self._slice_scores, self._maps = {}, {}, {}

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new collection."""
        self._reset()

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new collection."""
        self._reset()

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:  # noqa: ANN401
        """Collect the batch's slice scores and maps."""
        self._collect(trainer, outputs)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:  # noqa: ANN401
        """Collect the batch's slice scores and maps."""
        self._collect(trainer, outputs)

    def attach(self, trainer: Trainer) -> None:
        """Add this callback to ``trainer`` (once), just before anomalib's image visualiser if there is one."""
        if self in trainer.callbacks:
            return
        positions = [i for i, c in enumerate(trainer.callbacks) if isinstance(c, ImageVisualizer)]
        trainer.callbacks.insert(positions[0] if positions else len(trainer.callbacks), self)

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
        scores = outputs.pred_score.detach().float().reshape(-1).cpu()
        maps = outputs.anomaly_map
        if maps is not None:
            maps = maps.detach().float().cpu()
            maps = maps if maps.ndim == 4 else maps.unsqueeze(1)
        for i, image_path in enumerate(outputs.image_path):
            key, index = parse_slice_path(image_path)
            record = records.get(key)
            if record is None:
                continue
            self._slice_scores.setdefault(key, {})[index] = float(scores[i])
            if maps is not None and self.write_maps:
                plane = F.interpolate(maps[i : i + 1], size=record.geometry.slice_shape, mode="bilinear")
                self._maps.setdefault(key, {})[index] = plane[0, 0].numpy()
            if len(self._slice_scores[key]) == len(record.slices):
                self._finish(trainer, key, record)

    def _finish(self, trainer: Trainer, key: str, record: VolumeRecord) -> None:
        self.scores[key] = reduce_scores(
            np.array(list(self._slice_scores[key].values())), self.volume_score, self.top_k
        )
        maps = self._maps.pop(key, None)
        if maps is not None:
            write_anomaly_map(record, maps, self._dir(trainer) / f"{record.name}{MAP_SUFFIX}")

    def _end(self, trainer: Trainer) -> tuple[list[float], list[int]]:
        if self._pictures is not None:
            shutil.rmtree(self._pictures, ignore_errors=True)
            self._pictures = None
        records = self._records(trainer)
        for key in list(self._slice_scores):
            if key not in self.scores:  # incomplete volume (e.g. a limited number of batches)
                self._finish(trainer, key, records[key])
        if not self.scores:
            return [], []
        path = self._dir(trainer) / SCORES_FILE
        scores, labels = [], []
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["volume", "score", "label", "slices", "path"])
            for key, score in self.scores.items():
                record = records[key]
                label = "" if record.label_index < 0 else record.label_index
                writer.writerow([record.name, f"{score:.6g}", label, len(self._slice_scores[key]), key])
                if record.label_index >= 0:
                    scores.append(score)
                    labels.append(record.label_index)
        with (path.parent / SLICE_SCORES_FILE).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["volume", "slice", "score"])
            for key in self.scores:
                for index, score in sorted(self._slice_scores[key].items()):
                    writer.writerow([records[key].name, index, f"{score:.6g}"])
        logger.info("Wrote %d volume scores to %s.", len(self.scores), path)
        return scores, labels

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the scores and log ``volume_AUROC``."""
        scores, labels = self._end(trainer)
        if len(set(labels)) == 2:
            auroc = binary_auroc(torch.tensor(scores), torch.tensor(labels))
            pl_module.log("volume_AUROC", auroc, prog_bar=False, logger=True)
        elif scores:
            logger.warning("volume_AUROC needs normal and abnormal test volumes; only one kind was tested.")

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the scores."""
        self._end(trainer)


__all__ = [
    "MAP_SUFFIX",
    "SCORES_FILE",
    "SLICE_SCORES_FILE",
    "VolumeResults",
    "VolumeScore",
    "reduce_scores",
    "write_anomaly_map",
]
