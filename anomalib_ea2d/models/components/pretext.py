"""A self-supervised pretext task that teaches a feature encoder the user's own normal images.

:class:`SyntheticAnomalySegmentation` pastes synthetic anomalies into normal images and trains the
encoder, with a small segmentation head on its first three feature maps, to find them. The shapes
are anomalib's Perlin-noise masks (:class:`~anomalib.data.utils.generators.PerlinAnomalyGenerator`,
DRAEM's generator); what fills them is either the generator's augmented noise texture or a *foreign
patch*, the same region of another image of the batch, flipped and shifted, so the encoder learns to
tell the local appearance of one subject's anatomy from another's. Masks are limited to the
foreground (pixels brighter than ``foreground_threshold`` in the raw image), where a medical image
has its anatomy; the task knows nothing about the lesions it will be asked to find later.

The head is discarded after pretraining; only the encoder's weights matter (see
:class:`~anomalib_ea2d.callbacks.encoder_pretraining.EncoderPretraining`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from anomalib.data.utils.generators.perlin import PerlinAnomalyGenerator
from torch import nn

TEXTURES = ("noise", "foreign")
"""What fills a synthetic anomaly: the generator's noise texture, or another image's same region."""


class _SegmentationHead(nn.Module):
    """Projects up to three feature maps to 64 channels each, upsamples them to the first and segments."""

    def __init__(self, channels: Sequence[int], width: int = 64) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Conv2d(c, width, kernel_size=1) for c in channels)
        self.out = nn.Sequential(
            nn.Conv2d(width * len(channels), width, kernel_size=3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, kernel_size=1),
        )

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        maps = [
            F.interpolate(projection(f), size=size, mode="bilinear", align_corners=False)
            for projection, f in zip(self.projections, features, strict=False)
        ]
        return self.out(torch.cat(maps, dim=1))


class SyntheticAnomalySegmentation(nn.Module):
    """Segment synthetic anomalies pasted into normal images: a pretext loss for a feature encoder.

    Args:
        channels: Channels of the encoder's feature maps (``encoder.feature_info.channels()``); the
            head reads the first three.
        textures: What fills the masks, drawn per image: ``"noise"`` (the Perlin generator's
            augmented texture) and/or ``"foreign"`` (another image of the batch).
        probability: Share of the images that get an anomaly; the rest teach "normal".
        blend: Range of the pasted texture's opacity.
        foreground_threshold: Masks are limited to raw-image pixels brighter than this (images in
            [0, 1]); ``None`` lets them cover the whole image.

    Example:
        >>> import timm
        >>> encoder = timm.create_model("resnet18", features_only=True, out_indices=(1, 2, 3))
        >>> pretext = SyntheticAnomalySegmentation(encoder.feature_info.channels())
        >>> images = torch.rand(2, 3, 64, 64)
        >>> loss = pretext(encoder, images)
        >>> loss.ndim
        0
    """

    def __init__(
        self,
        channels: Sequence[int],
        textures: Sequence[str] = TEXTURES,
        probability: float = 0.75,
        blend: tuple[float, float] = (0.2, 1.0),
        foreground_threshold: float | None = 0.05,
    ) -> None:
        super().__init__()
        unknown = sorted(set(textures) - set(TEXTURES))
        if unknown or not textures:
            msg = f"textures={list(textures)!r} is not valid; choose one or more of {list(TEXTURES)}."
            raise ValueError(msg)
        if not 0.0 < probability <= 1.0:
            msg = f"probability={probability} is not valid; pass a share of images in (0, 1]."
            raise ValueError(msg)
        self.head = _SegmentationHead(list(channels)[:3])
        self.textures = tuple(textures)
        self.probability = probability
        self.blend = blend
        self.foreground_threshold = foreground_threshold
        self.generator = PerlinAnomalyGenerator(probability=1.0, blend_factor=blend)

    def synthesize(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paste anomalies into a batch of raw images in [0, 1]; returns the images and their masks ``[B, 1, H, W]``."""
        batch, _, height, width = images.shape
        masks = torch.zeros(batch, 1, height, width, device=images.device)
        fills = torch.zeros_like(images)
        donors = torch.roll(torch.arange(batch), shifts=1).tolist()
        for i in range(batch):
            if torch.rand(1).item() >= self.probability:
                continue
            texture, mask = self.generator.generate_perturbation(height, width, images.device)
            masks[i] = mask.permute(2, 0, 1)
            kind = self.textures[int(torch.randint(len(self.textures), (1,)).item())]
            if kind == "noise":
                fills[i] = texture.permute(2, 0, 1)[: images.shape[1]]
            else:
                shift = torch.randint(-height // 8, height // 8 + 1, (2,)).tolist()
                fills[i] = torch.roll(images[donors[i]].flip(-1), shifts=shift, dims=(-2, -1))
        if self.foreground_threshold is not None:
            masks = masks * (images.mean(dim=1, keepdim=True) > self.foreground_threshold).float()
        low, high = self.blend
        opacity = torch.empty(batch, 1, 1, 1, device=images.device).uniform_(low, high)
        alpha = masks * opacity
        return images * (1 - alpha) + fills * alpha, masks

    def forward(
        self,
        encoder: nn.Module,
        images: torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The pretext loss (binary cross-entropy + Dice) of ``encoder`` on a batch of normal images.

        Args:
            encoder: Feature encoder returning a list of feature maps (a timm ``features_only`` model).
            images: Raw normal images in [0, 1], ``[B, C, H, W]``; the anomalies are pasted into these.
            transform: The encoder's input transform (resize, normalisation), applied after pasting.
        """
        augmented, masks = self.synthesize(images)
        inputs = transform(augmented) if transform is not None else augmented
        logits = self.head(list(encoder(inputs))[:3])
        target = F.interpolate(masks, size=logits.shape[-2:], mode="area")
        bce = F.binary_cross_entropy_with_logits(logits, target)
        probabilities = logits.sigmoid()
        dice = 1 - (2 * (probabilities * target).sum() + 1) / (probabilities.sum() + target.sum() + 1)
        return bce + dice
