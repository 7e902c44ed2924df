"""Anomaly maps and image scores of EA2D.

For each view, the per-pixel anomaly is ``1 - cosine`` (over channels) between an encoder map and
its decoder reconstruction at every scale. The coarser scales are brought to the finest feature
resolution by nearest-neighbour upsampling and averaged. The second view's map is rotated back
into the image frame, the two views are averaged, and the result is bilinearly resized to the
input size (optionally Gaussian-smoothed). The image score is the mean over the two views of each
view's ``max`` (the paper's reference code), ``mean`` or ``topk`` (mean of the highest
``top_k_fraction`` of the map: robust to a single hot cell) at feature resolution.

With a region of interest (a ``[B, 1, H, W]`` 0/1 mask at input size, e.g. from
:class:`~anomalib_ea2d.callbacks.roi.Foreground`), the final map is zero outside it and the image score is
reduced over the feature cells that lie mostly inside it.

With a fitted :class:`~anomalib_ea2d.models.image.ea2d.components.standardization.MapStandardizer` (``standardizer``),
each view's map is first standardised per position by the maps of normal training images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from anomalib_ea2d.models.components.score_reduction import SCORE_REDUCTIONS, ScoreReduction, reduce_map


def rotate180(x: torch.Tensor) -> torch.Tensor:
    """Rotate a ``[..., H, W]`` tensor by 180 degrees (the EA2D second view)."""
    return torch.rot90(x, 2, (-2, -1))


def view_anomaly_map(
    encoder_features: Sequence[torch.Tensor], decoder_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Anomaly map of one view at the finest feature resolution.

    Args:
        encoder_features: Encoder maps, finest first, each ``[B, C_i, H_i, W_i]``.
        decoder_features: Their reconstructions, same shapes.

    Returns:
        ``[B, 1, H_0, W_0]``: mean over scales of ``1 - cosine`` between the two maps.

    Example:
        >>> import torch
        >>> f = [torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8)]
        >>> float(view_anomaly_map(f, f).abs().max()) < 1e-6
        True
    """
    finest = encoder_features[0].shape[-1]
    total: torch.Tensor | None = None
    for encoded, decoded in zip(encoder_features, decoder_features, strict=True):
        scale_map = 1.0 - F.cosine_similarity(encoded, decoded, dim=1).unsqueeze(1)
        factor = finest // scale_map.shape[-1]
        if factor > 1:
            scale_map = F.interpolate(scale_map, scale_factor=factor, mode="nearest")
        total = scale_map if total is None else total + scale_map
    assert total is not None
    return total / len(encoder_features)


class AnomalyMapGenerator(nn.Module):
    """Fuse the two views' feature maps into an anomaly map and an image score.

    Args:
        score_reduction: ``"max"`` (default, the reference), ``"mean"`` or ``"topk"`` per-view reduction.
        sigma: Standard deviation of the Gaussian smoothing of the final map; ``0`` disables it
            (the reference does not smooth).
        top_k_fraction: Fraction of the feature map's cells that ``"topk"`` averages.

    Example:
        >>> import torch
        >>> generator = AnomalyMapGenerator()
        >>> f = [torch.randn(1, 8, 16, 16), torch.randn(1, 16, 8, 8)]
        >>> anomaly_map, score = generator(f, f, f, f, image_size=(64, 64))
        >>> anomaly_map.shape, score.shape
        (torch.Size([1, 1, 64, 64]), torch.Size([1]))
    """

    def __init__(
        self, score_reduction: ScoreReduction = "max", sigma: float = 0.0, top_k_fraction: float = 0.01
    ) -> None:
        super().__init__()
        if score_reduction not in SCORE_REDUCTIONS:
            msg = f"score_reduction must be one of {SCORE_REDUCTIONS}, got {score_reduction!r}."
            raise ValueError(msg)
        if not 0.0 < top_k_fraction <= 1.0:
            msg = f"top_k_fraction must be in (0, 1], got {top_k_fraction}; e.g. 0.01 for the top 1 % of the map."
            raise ValueError(msg)
        self.top_k_fraction = top_k_fraction
        if sigma < 0:
            msg = f"sigma must be >= 0 (0 disables smoothing), got {sigma}."
            raise ValueError(msg)
        self.score_reduction = score_reduction
        self.sigma = sigma
        self.standardizer: nn.Module | None = None
        """Per-position standardisation of each view's map (set by ``EA2DModel(standardize_maps=True)``)."""
        self.blur: nn.Module | None = None
        if sigma > 0:
            # Imported here: importing anomalib.models at module level would run the plugin's
            # registration hook while this module is half-initialised.
            from anomalib.models.components import GaussianBlur2d  # noqa: PLC0415

            kernel_size = 2 * int(4.0 * sigma + 0.5) + 1
            self.blur = GaussianBlur2d(kernel_size=(kernel_size, kernel_size), sigma=(sigma, sigma), channels=1)

    def standardize(self, view_map: torch.Tensor, view: int) -> torch.Tensor:
        """``view``'s map standardised by the normal maps' statistics (unchanged without a standardizer)."""
        return view_map if self.standardizer is None else self.standardizer(view_map, view)

    def reduce(self, view_map: torch.Tensor, roi: torch.Tensor | None = None) -> torch.Tensor:
        """Per-image ``max``, ``mean`` or ``topk`` of a ``[B, 1, H, W]`` map (within ``roi`` if given)."""
        return reduce_map(view_map, self.score_reduction, self.top_k_fraction, roi)

    def forward(
        self,
        encoder_view1: Sequence[torch.Tensor],
        decoder_view1: Sequence[torch.Tensor],
        encoder_view2: Sequence[torch.Tensor],
        decoder_view2: Sequence[torch.Tensor],
        image_size: tuple[int, int] | torch.Size,
        roi: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the ``[B, 1, H, W]`` anomaly map at ``image_size`` and the ``[B]`` image scores.

        ``roi`` (``[B, 1, H, W]``, 0/1, in the image frame) zeroes the map outside it and restricts
        each view's score to the feature cells at least half inside it (rotated for the second view).
        """
        map1 = self.standardize(view_anomaly_map(encoder_view1, decoder_view1), 0)
        map2 = self.standardize(view_anomaly_map(encoder_view2, decoder_view2), 1)
        if roi is None:
            score = (self.reduce(map1) + self.reduce(map2)) / 2
        else:
            cells = (F.adaptive_avg_pool2d(roi, map1.shape[-2:]) >= 0.5).to(map1.dtype)
            score = (self.reduce(map1, cells) + self.reduce(map2, rotate180(cells))) / 2
        combined = (map1 + rotate180(map2)) / 2
        anomaly_map = self.to_image(combined, image_size)
        return (anomaly_map if roi is None else anomaly_map * roi), score

    def to_image(self, view_map: torch.Tensor, image_size: tuple[int, int] | torch.Size) -> torch.Tensor:
        """Resize a ``[B, 1, h, w]`` map bilinearly to ``image_size`` and smooth it (when ``sigma > 0``)."""
        anomaly_map = F.interpolate(view_map, size=tuple(image_size), mode="bilinear", align_corners=False)
        if self.blur is not None:
            anomaly_map = self.blur(anomaly_map)
        return anomaly_map
