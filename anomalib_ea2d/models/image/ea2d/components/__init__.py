"""Building blocks of EA2D, each written once and instantiated per view."""

from anomalib_ea2d.models.image.ea2d.components.attention import SelfAttention2d
from anomalib_ea2d.models.image.ea2d.components.decoder import EA2DDecoder, StageSpec, UpBasicBlock, UpBottleneck

__all__ = ["EA2DDecoder", "SelfAttention2d", "StageSpec", "UpBasicBlock", "UpBottleneck"]
