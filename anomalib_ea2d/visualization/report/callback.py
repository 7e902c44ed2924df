"""``RunReport``: a Lightning callback that writes one self-contained HTML report after ``test``.

Usable with any anomalib model, like the region of interest and the post-processor::

    anomalib test --model Patchcore --data ... --ckpt_path ... --trainer.callbacks+=anomalib_ea2d.RunReport

During the test it keeps, per image, the model's raw score (before the post-processor, from
:class:`~anomalib_ea2d.callbacks.raw_predictions.RawPredictions`), the label and the post-processor's decision;
a bounded random sample of raw pixel values per class (:class:`~.curves.StratifiedSample`); and
thumbnails of the worst false positives and false negatives only (two bounded heaps). Memory stays
bounded for thousands of images. After the test it writes ``report.html`` (see :mod:`.assemble`
for what it shows) next to the run's results and logs the path.

The post-processed fields of a batch (decision, normalised map) are read at the next batch end or
at the epoch end, once every callback has run on it, so the callback's place in the list does not
matter (as :class:`~anomalib_ea2d.callbacks.image_scores.ImageScores` does).

Example:
    >>> RunReport(output_dir="out").path.name
    'report.html'
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib.post_processing import PostProcessor
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_ea2d.callbacks.raw_predictions import RawPredictions, field_values, raw_score_values
from anomalib_ea2d.visualization.report.assemble import RunData, build_content
from anomalib_ea2d.visualization.report.curves import StratifiedSample
from anomalib_ea2d.visualization.report.page import Case, ReportContent, render_html
from anomalib_ea2d.visualization.report.plots import thumbnail

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"


def _flat(batch: Any, name: str, size: int) -> list[float | None]:  # noqa: ANN401
    return [None if v is None else float(v) for v in field_values(batch, name, size)]


def _threshold(post: Any, name: str) -> float | None:  # noqa: ANN401
    if not isinstance(post, PostProcessor) or not post.enable_thresholding:
        return None
    value = float(getattr(post, name))
    return None if math.isnan(value) else value


def _case_name(path: Any, index: int) -> str:  # noqa: ANN401
    if not path:
        return f"image {index}"
    parts = Path(str(path)).parts
    return "/".join(parts[-2:])


class RunReport(Callback):
    """Write ``report.html`` after ``test``: settings, metrics, ROC/PR curves, histograms, errors, volumes.

    After ``test``, :attr:`path` is the file written and :attr:`content` what it shows.

    Args:
        output_dir: Folder of the report; default the trainer's ``default_root_dir``.
        filename: File name of the report.
        cases: False positives and false negatives shown (each).
        thumbnail_size: Side of each thumbnail panel in pixels.
        pixel_sample: Pixels kept per class for the pixel curves and histogram (below it, all; 8 bytes
            each with its random key, at most twice as many between prunings: 64 MiB at the default).
        max_volume_overlays: Volumes drawn as a mid-lesion thumbnail at most.

    Example:
        >>> report = RunReport(cases=4, thumbnail_size=64)
        >>> report.cases, report.thumbnail_size
        (4, 64)
    """

    def __init__(
        self,
        output_dir: str | Path | None = None,
        filename: str = REPORT_FILE,
        cases: int = 8,
        thumbnail_size: int = 96,
        pixel_sample: int = 2_000_000,
        max_volume_overlays: int = 48,
    ) -> None:
        for name, value in (("cases", cases), ("thumbnail_size", thumbnail_size), ("pixel_sample", pixel_sample)):
            if value < 1:
                msg = f"RunReport {name} must be >= 1, got {value}; pass a positive number."
                raise ValueError(msg)
        if max_volume_overlays < 0:
            msg = f"RunReport max_volume_overlays must be >= 0, got {max_volume_overlays}; pass 0 for none."
            raise ValueError(msg)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.filename = filename
        self.cases = cases
        self.thumbnail_size = thumbnail_size
        self.pixel_sample = pixel_sample
        self.max_volume_overlays = max_volume_overlays
        self.path = (self.output_dir or Path()) / filename
        self.content: ReportContent | None = None
        self._reset(None)

    def _reset(self, pl_module: LightningModule | None) -> None:
        post = getattr(pl_module, "post_processor", None)
        self._scores: list[float] = []
        self._labels: list[float | None] = []
        self._decisions: list[float | None] = []
        self._normalized: list[float | None] = []
        self._pixels = StratifiedSample(self.pixel_sample)
        self._pixel_problem = ""
        self._heaps: dict[str, list[tuple[float, int, Case]]] = {"fp": [], "fn": []}
        self._counter = itertools.count()
        self._pending: tuple[Any, list[float]] | None = None
        self._image_shape: tuple[int, ...] | None = None
        self._image_threshold = _threshold(post, "image_threshold")
        self._pixel_threshold = _threshold(post, "pixel_threshold")
        normalizes = isinstance(post, PostProcessor) and post.enable_normalization
        self._map_range: tuple[float, float] | None = (0.0, 1.0) if normalizes else None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Make sure the raw scores are kept before the post-processor."""
        del stage
        RawPredictions.attach(trainer, pl_module)

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new collection; read the operating thresholds (raw scale) from the post-processor."""
        del trainer
        self._reset(pl_module)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:  # noqa: ANN401
        """Keep the batch's raw scores and pixels; its decisions are read once the post-processor has run."""
        del pl_module, args
        self._settle()
        if outputs is None or getattr(outputs, "pred_score", None) is None:
            return
        self._pending = (outputs, raw_score_values(trainer, outputs))
        raw = RawPredictions.find(trainer)
        image = getattr(outputs, "image", None)
        if self._image_shape is None and isinstance(image, torch.Tensor):
            self._image_shape = tuple(image.shape[-2:])
        anomaly_map = raw.raw(outputs, "anomaly_map") if raw is not None else outputs.anomaly_map
        self._sample_pixels(anomaly_map, getattr(outputs, "gt_mask", None))

    def _sample_pixels(self, anomaly_map: Any, mask: Any) -> None:  # noqa: ANN401
        if not isinstance(anomaly_map, torch.Tensor) or not isinstance(mask, torch.Tensor) or self._pixel_problem:
            return
        if anomaly_map.numel() != mask.numel():
            self._pixel_problem = (
                f"anomaly maps ({tuple(anomaly_map.shape)}) and masks ({tuple(mask.shape)}) differ in size"
            )
            return
        self._pixels.update(anomaly_map, mask)

    def _settle(self) -> None:
        """Read the decisions and maps of the last batch, which the other callbacks have post-processed."""
        if self._pending is None:
            return
        batch, raw = self._pending
        self._pending = None
        size = len(raw)
        labels, decisions = _flat(batch, "gt_label", size), _flat(batch, "pred_label", size)
        normalized = _flat(batch, "pred_score", size)
        paths = list(getattr(batch, "image_path", None) or [None] * size)
        for i in range(size):
            label, decision = labels[i], decisions[i]
            if label is not None and decision is not None and bool(label) != bool(decision):
                kind, key = ("fp", raw[i]) if decision else ("fn", -raw[i])
                self._offer(kind, key, batch, i, _case_name(paths[i], len(self._scores) + i), raw[i], normalized[i])
        self._scores += raw
        self._labels += labels
        self._decisions += decisions
        self._normalized += normalized

    def _offer(
        self,
        kind: str,
        key: float,
        batch: Any,  # noqa: ANN401
        i: int,
        name: str,
        score: float,
        normalized: float | None,
    ) -> None:
        """Keep a thumbnail of image ``i`` if it is among the ``cases`` worst of its kind so far."""
        heap = self._heaps[kind]
        if len(heap) >= self.cases and key <= heap[0][0]:
            return
        image = getattr(batch, "image", None)
        if not isinstance(image, torch.Tensor):
            return
        picture = image[i].detach().float().cpu()
        picture = picture.mean(0) if picture.ndim == 3 else picture
        maps, masks = getattr(batch, "anomaly_map", None), getattr(batch, "gt_mask", None)
        heat = maps[i].detach().float().cpu().squeeze().numpy() if isinstance(maps, torch.Tensor) else np.zeros(1)
        mask = masks[i].detach().cpu().squeeze().numpy() > 0 if isinstance(masks, torch.Tensor) else None
        heat = heat if heat.ndim == 2 else np.zeros(picture.shape)
        png = thumbnail(picture.numpy(), heat, mask, size=self.thumbnail_size, map_range=self._map_range)
        entry = (key, next(self._counter), Case(name, score, png, normalized))
        if len(heap) < self.cases:
            heapq.heappush(heap, entry)
        else:
            heapq.heapreplace(heap, entry)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Read the last batch's decisions."""
        del trainer, pl_module
        self._settle()

    def _run_data(self) -> RunData:
        def array(values: list[float | None]) -> np.ndarray:
            return np.array([-1.0 if v is None else v for v in values], np.float64)

        worst = {kind: [entry[2] for entry in sorted(heap, reverse=True)] for kind, heap in self._heaps.items()}
        return RunData(
            scores=np.array(self._scores, np.float64),
            labels=array(self._labels).astype(int),
            decisions=array(self._decisions).astype(int),
            pixels=self._pixels if sum(self._pixels.totals) else None,
            pixel_problem=self._pixel_problem,
            false_positives=worst["fp"],
            false_negatives=worst["fn"],
            image_threshold=self._image_threshold,
            pixel_threshold=self._pixel_threshold,
            image_shape=self._image_shape,
        )

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Write the report (the logged metrics are final here) and log its path."""
        if not trainer.is_global_zero or not self._scores:
            return
        folder = self.output_dir or Path(trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / self.filename
        logged = {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.startswith(("image_", "pixel_", "volume_"))
        }
        self.content = build_content(
            self._run_data(),
            trainer,
            pl_module,
            folder,
            logged,
            max_volume_overlays=self.max_volume_overlays,
            thumbnail_size=self.thumbnail_size,
        )
        self.path.write_text(render_html(self.content), encoding="utf-8")
        logger.info("Wrote the run report to %s (%.0f KiB).", self.path, self.path.stat().st_size / 1024)


__all__ = ["REPORT_FILE", "RunReport"]
