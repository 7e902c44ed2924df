"""What the run report shows, computed from the arrays the :class:`~.callback.RunReport` kept.

* settings: model, its hyper-parameters, post-processor and thresholds (raw scale), evaluator,
  checkpoint, versions;
* data: datamodule, test images by label, input size, pixels and volumes counted;
* metrics: every logged ``image_``/``pixel_``/``volume_`` metric next to the report's own value
  from its arrays (AUROC and AP of the raw scores; sensitivity/specificity of the run's decisions);
* ROC and PR curves of images (slices), pixels and volumes, with their AUROC/AP;
* histograms of raw normal and abnormal scores per level, with the operating threshold and the
  sensitivity/specificity it gives;
* the worst false positives and false negatives as thumbnails, and the volume table.

Pixel curves come from :class:`~.curves.StratifiedSample`: exact while the test set's pixels fit
the sample (the report's pixel AUROC then equals the logged one); otherwise the curve is an
estimate and its legend quotes the logged, exact value.

Example:
    >>> run = RunData(scores=np.array([0.1, 0.9]), labels=np.array([0, 1]), decisions=np.array([0, 1]))
    >>> [row.name for row in metric_rows(run, {"image_AUROC": 1.0}, None)[:2]]
    ['image_AUROC', 'image_AveragePrecision']
"""

from __future__ import annotations

import importlib.metadata
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import LightningModule, Trainer

from anomalib_ea2d.metrics.evaluator import RawScoreEvaluator
from anomalib_ea2d.visualization.report.curves import (
    CurvePoints,
    StratifiedSample,
    curve_points,
    evaluator_areas,
    rates_at,
)
from anomalib_ea2d.visualization.report.page import Case, MetricRow, ReportContent
from anomalib_ea2d.visualization.report.plots import Histogram, curves_figure, histogram_figure
from anomalib_ea2d.visualization.report.volumes import VolumeTable, read_volume_table


@dataclass
class RunData:
    """Arrays kept during a test (one entry per image; ``-1`` where a label or decision is unknown)."""

    scores: np.ndarray
    labels: np.ndarray
    decisions: np.ndarray
    pixels: StratifiedSample | None = None
    pixel_problem: str = ""
    false_positives: list[Case] = field(default_factory=list)
    false_negatives: list[Case] = field(default_factory=list)
    image_threshold: float | None = None
    pixel_threshold: float | None = None
    image_shape: tuple[int, ...] | None = None


def _curve(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> CurvePoints | None:
    known = labels >= 0
    if len(set(labels[known].tolist())) < 2:
        return None
    return curve_points(scores[known], labels[known], None if weights is None else weights[known])


def _rates_note(sensitivity: float, specificity: float, threshold: float | None, source: str) -> str:
    where = f"threshold {threshold:.4g}" if threshold is not None else "the run's decisions"
    return f"sensitivity {sensitivity:.3f}, specificity {specificity:.3f} at {where} ({source})"


def _areas(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float] | None:
    known = labels >= 0
    if len(set(labels[known].tolist())) < 2:
        return None
    return evaluator_areas(scores[known], labels[known])


def metric_rows(run: RunData, logged: dict[str, float], volumes: VolumeTable | None) -> list[MetricRow]:
    """Logged metrics next to the report's values from the same raw arrays (the evaluator's metric classes)."""
    own: dict[str, tuple[float, str]] = {}
    image = _areas(run.scores, run.labels)
    if image is not None:
        own["image_AUROC"] = (image[0], "raw image scores")
        own["image_AveragePrecision"] = (image[1], "raw image scores")
    known = (run.labels >= 0) & (run.decisions >= 0)
    if known.any():
        sensitivity, specificity = rates_at(run.decisions[known], run.labels[known])
        own["image_Sensitivity"] = (sensitivity, "the run's decisions")
        own["image_Specificity"] = (specificity, "the run's decisions")
    if run.pixels is not None:
        values, labels, weights = run.pixels.arrays()
        if run.pixels.exact:
            pixel = _areas(values, labels.astype(int))
            source = "all raw pixel values"
        else:
            points = _curve(values, labels.astype(int), weights)
            pixel = None if points is None else (points.auroc, points.average_precision)
            source = f"estimate from a sample of {len(values)} raw pixel values"
        if pixel is not None:
            own["pixel_AUROC"] = (pixel[0], source)
            own["pixel_AveragePrecision"] = (pixel[1], source)
    if volumes is not None:
        volume = _areas(volumes.scores, volumes.labels)
        if volume is not None:
            own["volume_AUROC"] = (volume[0], "raw volume scores (volume_scores.csv)")
            own["volume_AveragePrecision"] = (volume[1], "raw volume scores (volume_scores.csv)")
    names = [*own, *(name for name in logged if name not in own)]
    order = {"image": 0, "pixel": 1, "volume": 2}
    names.sort(key=lambda name: order.get(name.split("_", 1)[0], 3))
    rows = []
    for name in names:
        value, source = own.get(name, (None, ""))
        rows.append(MetricRow(name, logged.get(name), value, source))
    return rows


def _curves(run: RunData, logged: dict[str, float], volumes: VolumeTable | None) -> tuple[bytes | None, str]:
    curves: list[tuple[str, CurvePoints, str]] = []
    notes = []
    image = _curve(run.scores, run.labels)
    if image is not None:
        curves.append(("image", image, f"{_areas(run.scores, run.labels)[0]:.4f}"))
    if run.pixels is not None:
        values, labels, weights = run.pixels.arrays()
        pixel = _curve(values, labels.astype(int), weights)
        if pixel is not None:
            if run.pixels.exact:
                curves.append(("pixel", pixel, f"{_areas(values, labels.astype(int))[0]:.4f}"))
            else:
                exact = logged.get("pixel_AUROC")
                quoted = f"{exact:.4f} logged" if exact is not None else f"~{pixel.auroc:.4f}"
                curves.append(("pixel", pixel, quoted))
                notes.append(
                    f"Pixel curves from a random sample of {len(values)} of {sum(run.pixels.totals)} pixels "
                    f"(at most {run.pixels.capacity} per class, weighted back to the full set); the pixel AUROC "
                    "quoted is the logged value, computed on every pixel."
                )
    if run.pixel_problem:
        notes.append(f"No pixel curves: {run.pixel_problem}.")
    if volumes is not None:
        volume = _curve(volumes.scores, volumes.labels)
        if volume is not None:
            curves.append(("volume", volume, f"{_areas(volumes.scores, volumes.labels)[0]:.4f}"))
    notes.append("Curves of the raw scores, every distinct score a threshold (as the logged AUROC/AP).")
    return (curves_figure(curves) if curves else None), " ".join(notes)


def _histograms(run: RunData, volumes: VolumeTable | None) -> tuple[bytes | None, str]:
    panels: list[Histogram] = []
    known = run.labels >= 0
    if known.any():
        decided = known & (run.decisions >= 0)
        note = ""
        if decided.any():
            note = _rates_note(*rates_at(run.decisions[decided], run.labels[decided]), run.image_threshold, "decisions")
        labels = run.labels
        panels.append(
            Histogram("image (slice)", run.scores[labels == 0], run.scores[labels == 1], run.image_threshold, note)
        )
    if run.pixels is not None:
        values, labels, weights = run.pixels.arrays()
        note = ""
        if run.pixel_threshold is not None:
            rates = rates_at(values > run.pixel_threshold, labels, weights)
            note = _rates_note(
                *rates, run.pixel_threshold, "raw map above it" + ("" if run.pixels.exact else ", sample")
            )
        panels.append(
            Histogram("pixel", values[labels == 0], values[labels == 1], run.pixel_threshold, note,
                      weights[labels == 0], weights[labels == 1])
        )  # fmt: skip
    if volumes is not None and len(volumes.labels):
        decided = volumes.predictions >= 0
        note = ""
        if decided.any():
            note = _rates_note(
                *rates_at(volumes.predictions[decided], volumes.labels[decided]), run.image_threshold, "decisions"
            )
        panels.append(
            Histogram("volume", volumes.scores[volumes.labels == 0], volumes.scores[volumes.labels == 1],
                      run.image_threshold, note)
        )  # fmt: skip
    text = (
        "Raw scores (before the post-processor); each histogram normalised to unit area. Dashed: the operating "
        "threshold on the raw scale (the post-processor's image or pixel threshold); decisions above it are flagged."
    )
    return (histogram_figure(panels) if panels else None), text


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _short(value: Any, limit: int = 140) -> str:  # noqa: ANN401
    text = " ".join(repr(value).split()) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def settings_rows(trainer: Trainer, pl_module: LightningModule, run: RunData) -> list[tuple[str, str]]:
    """The run's settings as ``(name, value)`` rows."""
    rows = [("model", type(pl_module).__name__)]
    post = getattr(pl_module, "post_processor", None)
    rows.append(("post-processor", type(post).__name__ if post is not None else "-"))
    rows.append(("image threshold (raw scale)", "-" if run.image_threshold is None else f"{run.image_threshold:.6g}"))
    rows.append(("pixel threshold (raw scale)", "-" if run.pixel_threshold is None else f"{run.pixel_threshold:.6g}"))
    evaluator = getattr(pl_module, "evaluator", None)
    metrics = [getattr(metric, "name", type(metric).__name__) for metric in getattr(evaluator, "test_metrics", [])]
    rows.append(("evaluator", f"{type(evaluator).__name__}: {', '.join(metrics)}" if evaluator is not None else "-"))
    rows.append(("checkpoint", str(trainer.ckpt_path or "the model in memory")))
    rows.append(("results folder", str(trainer.default_root_dir)))
    versions = ", ".join(f"{name} {_version(name)}" for name in ("anomalib-ea2d", "anomalib", "torch", "lightning"))
    rows.append(("versions", versions))
    return rows


def hyperparameter_rows(pl_module: LightningModule) -> list[tuple[str, str]]:
    """The model's hyper-parameters (as saved in its checkpoint) as ``(name, value)`` rows."""
    hparams = dict(getattr(pl_module, "hparams", {}) or {})
    return [(key, _short(value)) for key, value in hparams.items()]


def data_rows(trainer: Trainer, run: RunData, volumes: VolumeTable | None) -> list[tuple[str, str]]:
    """The tested data as ``(name, value)`` rows."""
    datamodule = trainer.datamodule
    rows = [("datamodule", type(datamodule).__name__ if datamodule is not None else "-")]
    for attribute in ("name", "category", "root"):
        value = getattr(datamodule, attribute, None)
        if value not in (None, ""):
            rows.append((attribute, str(value)))
    counts = {
        kind: int(np.sum(run.labels == code)) for kind, code in (("normal", 0), ("abnormal", 1), ("unlabelled", -1))
    }
    rows.append(
        ("test images (slices)", f"{run.scores.size}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    )
    if run.image_shape is not None:
        rows.append(("model input", " x ".join(map(str, run.image_shape)) + " px"))
    if run.pixels is not None:
        normal, lesion = run.pixels.totals
        rows.append(
            ("pixels with masks", f"{normal + lesion} ({lesion} abnormal, {lesion / max(normal + lesion, 1):.2%})")
        )
    if volumes is not None:
        labels = volumes.labels
        rows.append(
            (
                "test volumes",
                f"{len(volumes.rows)}: {int(np.sum(labels == 0))} normal, {int(np.sum(labels == 1))} abnormal",
            )
        )
    return rows


def build_content(
    run: RunData,
    trainer: Trainer,
    pl_module: LightningModule,
    report_dir: Path,
    logged: dict[str, float],
    max_volume_overlays: int = 48,
    thumbnail_size: int = 96,
) -> ReportContent:
    """Everything the page shows."""
    volumes = read_volume_table(trainer, report_dir, max_volume_overlays, thumbnail_size)
    curves, curves_note = _curves(run, logged, volumes)
    histograms, histograms_note = _histograms(run, volumes)
    cases = len(run.false_positives) + len(run.false_negatives)
    errors_note = (
        "Each thumbnail: the model's input with the lesion outlined in green (left), and the anomaly map the "
        "post-processor left over it (right; stronger colour = higher value, 0.5 = the pixel threshold when "
        "the post-processor normalises). Decisions are the run's."
        if cases
        else "No false positives or false negatives (or no labels/decisions)."
    )
    volumes_note = (
        f"Every tested volume, highest raw score first; scores and maps from {volumes.folder}. Overlays: the map "
        "over the middle lesion slice (else the top-scoring slice), wrong decisions first."
        if volumes is not None
        else "This run tested no volumes."
    )
    model = type(pl_module).__name__
    if not isinstance(getattr(pl_module, "evaluator", None), RawScoreEvaluator):
        curves_note += (
            " This model's evaluator is not a RawScoreEvaluator: its logged ranking metrics are those of the "
            "post-processed (clipped) scores and may differ from the raw curves here."
        )
    return ReportContent(
        title=f"{model} test run report",
        subtitle=f"Written {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; results in {trainer.default_root_dir}.",
        settings=settings_rows(trainer, pl_module, run),
        hyperparameters=hyperparameter_rows(pl_module),
        data=data_rows(trainer, run, volumes),
        metrics=metric_rows(run, logged, volumes),
        curves=curves,
        curves_note=curves_note,
        histograms=histograms,
        histograms_note=histograms_note,
        false_positives=run.false_positives,
        false_negatives=run.false_negatives,
        errors_note=errors_note,
        volumes=volumes.rows if volumes is not None else [],
        volumes_note=volumes_note,
    )


__all__ = ["RunData", "build_content", "data_rows", "hyperparameter_rows", "metric_rows", "settings_rows"]
