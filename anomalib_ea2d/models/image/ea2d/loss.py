"""Training loss of EA2D.

Each view contributes a reconstruction term: summed over the three scales, ``1 -`` the
batch-mean cosine similarity between the flattened (``C * H * W``) decoder output and the
encoder map it reconstructs. The encoder maps are detached as targets; gradients still reach the
encoder through the decoder's inputs. A transformation-consistency term ``1 -`` the batch-mean
cosine between the globally average-pooled deepest encoder maps of the two views ties the views
together. The total is a weighted sum (0.5 each in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

if TYPE_CHECKING:
    from anomalib_ea2d.models.image.ea2d.torch_model import EA2DFeatures


def reconstruction_loss(
    encoder_features: Sequence[torch.Tensor], decoder_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Sum over scales of ``1 - mean_b cos(flatten(decoded_b), flatten(encoded_b))``, targets detached.

    Example:
        >>> import torch
        >>> f = [torch.randn(2, 4, 8, 8)]
        >>> float(reconstruction_loss(f, f)) < 1e-6
        True
    """
    total = torch.zeros((), device=decoder_features[0].device)
    for encoded, decoded in zip(encoder_features, decoder_features, strict=True):
        total = total + 1.0 - F.cosine_similarity(decoded.flatten(1), encoded.detach().flatten(1), dim=1).mean()
    return total


def _check_weight(name: str, value: float) -> float:
    if value < 0:
        msg = f"{name} must be >= 0, got {value}; use 0 to switch the term off."
        raise ValueError(msg)
    return float(value)


class EA2DLoss(nn.Module):
    """Weighted sum of the two views' reconstruction losses and the contrastive term.

    Args:
        view1_weight: Weight of the first (original image) view's reconstruction loss.
        view2_weight: Weight of the second (transformed) view's reconstruction loss.
        contrastive_weight: Weight of the transformation-consistency term.

    Example:
        >>> import torch
        >>> from anomalib_ea2d import EA2DModel
        >>> model = EA2DModel(backbone="resnet18", pre_trained=False).train()
        >>> loss = EA2DLoss()(model(torch.randn(2, 3, 64, 64)))
        >>> loss.ndim
        0
    """

    def __init__(self, view1_weight: float = 0.5, view2_weight: float = 0.5, contrastive_weight: float = 0.5) -> None:
        super().__init__()
        self.view1_weight = _check_weight("view1_weight", view1_weight)
        self.view2_weight = _check_weight("view2_weight", view2_weight)
        self.contrastive_weight = _check_weight("contrastive_weight", contrastive_weight)

    @staticmethod
    def terms(features: EA2DFeatures) -> dict[str, torch.Tensor]:
        """Unweighted loss terms: ``recon_view1``, ``recon_view2`` and ``contrastive``."""
        pooled1, pooled2 = features.pooled
        return {
            "recon_view1": reconstruction_loss(features.encoder[0], features.decoder[0]),
            "recon_view2": reconstruction_loss(features.encoder[1], features.decoder[1]),
            "contrastive": 1.0 - F.cosine_similarity(pooled1, pooled2, dim=1).mean(),
        }

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted total of the terms returned by :meth:`terms`."""
        return (
            self.view1_weight * terms["recon_view1"]
            + self.view2_weight * terms["recon_view2"]
            + self.contrastive_weight * terms["contrastive"]
        )

    def forward(self, features: EA2DFeatures) -> torch.Tensor:
        """Total training loss for the training-mode output of :class:`~anomalib_ea2d.EA2DModel`."""
        return self.combine(self.terms(features))
