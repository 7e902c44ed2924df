r"""Pictures of the run report: ROC/PR curves, score histograms and small overlay thumbnails (PNG, JPEG).

Figures are drawn with matplotlib's object API on an Agg canvas (no display, no pyplot state), so
reports can be written on headless machines and from several processes. Thumbnails are composed
with numpy and written with PIL: the image (grey, its lesion outlined in green) next to the same
image with the anomaly map in colour.

Example:
    >>> import numpy as np
    >>> jpeg = thumbnail(np.zeros((64, 64)), np.ones((64, 64)) * 0.7, np.zeros((64, 64), bool), size=32)
    >>> data_uri(jpeg)[:23]
    'data:image/jpeg;base64,'
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from anomalib_ea2d.visualization.report.curves import CurvePoints

NORMAL_COLOUR, ABNORMAL_COLOUR, THRESHOLD_COLOUR = "#1f77b4", "#d62728", "#222222"
DPI = 80


@dataclass
class Histogram:
    """Scores of one level (image, pixel, volume) split by label, with the operating threshold.

    Attributes:
        title: Panel title, e.g. ``"image (slice)"``.
        normal: Raw scores of normal samples.
        abnormal: Raw scores of abnormal samples.
        threshold: Operating threshold on the same scale, if calibrated.
        note: Line under the title (sensitivity/specificity at the threshold).
        normal_weights: Optional weight per normal score (a sample standing for more).
        abnormal_weights: Optional weight per abnormal score.
    """

    title: str
    normal: np.ndarray
    abnormal: np.ndarray
    threshold: float | None = None
    note: str = ""
    normal_weights: np.ndarray | None = None
    abnormal_weights: np.ndarray | None = None


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def data_uri(picture: bytes) -> str:
    """``data:image/...;base64,...`` (PNG or JPEG) for an ``<img src>``: the picture travels inside the HTML."""
    kind = "jpeg" if picture.startswith(b"\xff\xd8") else "png"
    return f"data:image/{kind};base64," + base64.b64encode(picture).decode("ascii")


def _thin(count: int, limit: int = 4000) -> np.ndarray:
    """Indices of at most ``limit`` points spread over ``count``, the first and last kept.

    A curve of millions of pixels is drawn from a few thousand of its points, which look the same at this size.
    """
    if count <= limit:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, limit).round().astype(int))


def curves_figure(curves: Sequence[tuple[str, CurvePoints, str]]) -> bytes:
    """ROC (left) and precision-recall (right) of each ``(level, points, legend note)``."""
    figure = Figure(figsize=(10, 4.2))
    roc, pr = figure.subplots(1, 2)
    for index, (level, points, note) in enumerate(curves):
        colour = f"C{index}"
        shown = _thin(points.fpr.size)
        roc.plot(points.fpr[shown], points.tpr[shown], color=colour, label=f"{level}: AUROC {note}")
        shown = _thin(points.precision.size)
        recall, precision = points.tpr[1:][shown], points.precision[shown]
        pr.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre", color=colour,
                label=f"{level}: AP {points.average_precision:.4f}")  # fmt: skip
    roc.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    roc.set(
        xlabel="1 - specificity (false-positive rate)", ylabel="sensitivity", title="ROC", xlim=(0, 1), ylim=(0, 1.01)
    )
    pr.set(xlabel="recall (sensitivity)", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    for axes in (roc, pr):
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right" if axes is roc else "lower left", fontsize=8)
    figure.tight_layout()
    return png_bytes(figure)


def histogram_figure(histograms: Sequence[Histogram]) -> bytes:
    """One panel per level: normal and abnormal score histograms (each normalised) and the threshold."""
    figure = Figure(figsize=(4.2 * len(histograms), 3.9))
    panels = figure.subplots(1, len(histograms), squeeze=False)[0]
    for axes, histogram in zip(panels, histograms, strict=True):
        values = np.concatenate([histogram.normal, histogram.abnormal])
        low, high = float(values.min()), float(values.max())
        if histogram.threshold is not None:
            low, high = min(low, histogram.threshold), max(high, histogram.threshold)
        bins = np.linspace(low, high if high > low else low + 1.0, 31)
        for scores, weights, colour, name in (
            (histogram.normal, histogram.normal_weights, NORMAL_COLOUR, "normal"),
            (histogram.abnormal, histogram.abnormal_weights, ABNORMAL_COLOUR, "abnormal"),
        ):
            if len(scores):
                axes.hist(scores, bins=bins, weights=weights, density=True, alpha=0.55, color=colour,
                          label=f"{name} ({len(scores)})")  # fmt: skip
        if histogram.threshold is not None:
            axes.axvline(histogram.threshold, color=THRESHOLD_COLOUR, linestyle="--", label="threshold")
        axes.set_title("\n".join([histogram.title, *textwrap.wrap(histogram.note, 52)]), fontsize=8)
        axes.set(xlabel="raw score", ylabel="density")
        axes.legend(fontsize=7)
    figure.tight_layout()
    return png_bytes(figure)


def _resize(array: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    height, width = array.shape
    scale = size / max(height, width)
    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(array.astype(np.float32), mode="F").resize(shape, resample))


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def thumbnail(
    image: np.ndarray,
    anomaly_map: np.ndarray,
    mask: np.ndarray | None,
    size: int = 96,
    map_range: tuple[float, float] | None = (0.0, 1.0),
) -> bytes:
    """JPEG of two ``size``-pixel panels: ``image`` with the ``mask`` outline, and the map over the image.

    The map is drawn in the jet colours with an opacity that grows with its value, so that the image
    shows through where the map is low.

    JPEG (quality 85, colour at full resolution so that the outline stays sharp) keeps a thumbnail at a
    few KiB even for noisy images, so a report of many cases stays small.

    Args:
        image: 2-D image, any range (scaled to its own minimum and maximum).
        anomaly_map: 2-D map, any size (resized to the image's panel).
        mask: 2-D lesion mask or ``None``.
        size: Longer side of each panel in pixels.
        map_range: Map values shown at the ends of the colour scale (``None``: the map's own range).
    """
    grey = _resize(np.asarray(image, np.float32), size, Image.Resampling.BOX)
    low, high = float(grey.min()), float(grey.max())
    grey = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
    heat = _resize(np.asarray(anomaly_map, np.float32), size, Image.Resampling.BILINEAR)
    heat = np.asarray(Image.fromarray(heat, mode="F").resize(grey.shape[::-1], Image.Resampling.BILINEAR))
    map_range = map_range or (float(heat.min()), float(heat.max()))
    span = map_range[1] - map_range[0]
    heat = np.clip((heat - map_range[0]) / (span if span > 0 else 1.0), 0.0, 1.0)
    base = np.repeat(grey[..., None], 3, axis=2)
    left = base.copy()
    if mask is not None and np.asarray(mask).any():
        small = _resize(np.asarray(mask, np.float32), size, Image.Resampling.BILINEAR) > 0.5
        small = np.asarray(Image.fromarray(small).resize(grey.shape[::-1], Image.Resampling.NEAREST))
        left[_outline(small)] = (0.1, 1.0, 0.1)
    alpha = 0.75 * heat[..., None]  # low values fade into the image, high values show in full colour
    right = (1 - alpha) * base + alpha * colormaps["jet"](heat)[..., :3]
    gap = np.ones((grey.shape[0], 2, 3))
    picture = np.concatenate([left, gap, right], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(np.round(picture * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=85, subsampling=0)
    return buffer.getvalue()


__all__ = ["Histogram", "curves_figure", "data_uri", "histogram_figure", "png_bytes", "thumbnail"]
