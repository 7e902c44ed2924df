"""A contrastive pretext task (SimSiam) that teaches a feature encoder the user's own normal images.

:class:`SimSiam` is the second objective :class:`~anomalib_ea2d.callbacks.EncoderPretraining` can
run: two randomly augmented views of each normal image (crop and rescale, horizontal flip, contrast,
brightness and noise) go through the encoder; a projector and a predictor on its pooled deepest
features are trained so that each view predicts the other's projection, the target side without
gradient (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021). It needs no
negative pairs and no anomalies at all: it learns what stays the same across views of one image,
and what tells one image from the next, from the normal images alone.

The projector and predictor are discarded after pretraining; only the encoder's weights matter.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def _mlp(sizes: Sequence[int], last_norm: bool) -> nn.Sequential:
    """Linear layers with batch norm and ReLU between them (and batch norm after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (inputs, outputs) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        layers.append(nn.Linear(inputs, outputs, bias=last and not last_norm))
        if not last:
            layers += [nn.BatchNorm1d(outputs), nn.ReLU(inplace=True)]
        elif last_norm:
            layers.append(nn.BatchNorm1d(outputs, affine=False))
    return nn.Sequential(*layers)


class SimSiam(nn.Module):
    """Two augmented views of each normal image predict each other's projection: a pretext loss for an encoder.

    Args:
        channels: Channels of the encoder's feature maps (``encoder.feature_info.channels()``); the
            projector reads the last (deepest) one, globally average-pooled.
        projection: Width of the projector's output (and of its hidden layer).
        prediction: Width of the predictor's bottleneck.
        crop_scale: Range of the share of the image side kept by the random crop of each view.
        contrast: Largest relative change of the contrast of a view.
        brightness: Largest shift of the brightness of a view (images in [0, 1]).
        noise: Standard deviation of the Gaussian noise added to each view.

    Example:
        >>> import timm
        >>> encoder = timm.create_model("resnet18", features_only=True, out_indices=(1, 2, 3))
        >>> pretext = SimSiam(encoder.feature_info.channels())
        >>> images = torch.rand(4, 3, 64, 64)
        >>> loss = pretext(encoder, images)
        >>> bool(-1.0 <= loss <= 1.0)
        True
    """

    def __init__(
        self,
        channels: Sequence[int],
        projection: int = 512,
        prediction: int = 128,
        crop_scale: tuple[float, float] = (0.6, 1.0),
        contrast: float = 0.3,
        brightness: float = 0.1,
        noise: float = 0.02,
    ) -> None:
        super().__init__()
        low, high = crop_scale
        if not 0.0 < low <= high <= 1.0:
            msg = f"crop_scale={crop_scale!r} is not valid; pass (low, high) with 0 < low <= high <= 1."
            raise ValueError(msg)
        if projection < 1 or prediction < 1:
            msg = f"projection={projection} and prediction={prediction} must be positive widths."
            raise ValueError(msg)
        deepest = list(channels)[-1]
        self.projector = _mlp([deepest, projection, projection], last_norm=True)
        self.predictor = _mlp([projection, prediction, projection], last_norm=False)
        self.crop_scale = crop_scale
        self.contrast = contrast
        self.brightness = brightness
        self.noise = noise

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """One random view per image of a batch of raw images in [0, 1] (same shape, values in [0, 1])."""
        batch = images.shape[0]
        device = images.device
        low, high = self.crop_scale
        scale = torch.empty(batch, device=device).uniform_(low, high)
        flip = torch.where(torch.rand(batch, device=device) < 0.5, -1.0, 1.0)
        shift = (torch.rand(batch, 2, device=device) * 2 - 1) * (1 - scale).unsqueeze(1)
        theta = torch.zeros(batch, 2, 3, device=device)
        theta[:, 0, 0] = scale * flip
        theta[:, 1, 1] = scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        views = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        gain = 1 + torch.empty(batch, 1, 1, 1, device=device).uniform_(-self.contrast, self.contrast)
        offset = torch.empty(batch, 1, 1, 1, device=device).uniform_(-self.brightness, self.brightness)
        views = views * gain + offset + torch.randn_like(views) * self.noise
        return views.clamp(0.0, 1.0)

    def _project(self, encoder: nn.Module, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projection and prediction of one batch of (transformed) views."""
        deepest = list(encoder(views))[-1]
        projection = self.projector(deepest.mean(dim=(-2, -1)))
        return projection, self.predictor(projection)

    def forward(
        self,
        encoder: nn.Module,
        images: torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The symmetric negative cosine similarity (in [-1, 1]) of ``encoder`` on two views of a normal batch.

        Args:
            encoder: Feature encoder returning a list of feature maps (a timm ``features_only`` model).
            images: Raw normal images in [0, 1], ``[B, C, H, W]`` with ``B >= 2``.
            transform: The encoder's input transform (resize, normalisation), applied to each view.
        """
        if images.shape[0] < 2:
            msg = f"SimSiam needs batches of at least 2 images (batch norm in its heads); got {images.shape[0]}."
            raise ValueError(msg)
        first, second = self.augment(images), self.augment(images)
        if transform is not None:
            first, second = transform(first), transform(second)
        z1, p1 = self._project(encoder, first)
        z2, p2 = self._project(encoder, second)
        similarity = (
            F.cosine_similarity(p1, z2.detach(), dim=-1).mean() + F.cosine_similarity(p2, z1.detach(), dim=-1).mean()
        )
        return -similarity / 2
