"""Self-attention skip connection of EA2D (SAGAN-style position attention).

EA2D places one such module on the encoder's second and third feature maps of each view before
they are added into the decoder. Query and key project the ``C`` channels to ``C // 8``, the value
keeps ``C`` channels; the attention weights are a softmax over all ``H * W`` positions of the
unscaled query-key products, and the result is blended into the input with a learnable scalar
``gamma`` that starts at zero, so an untrained module is the identity.
"""

from __future__ import annotations

import torch
from torch import nn


class SelfAttention2d(nn.Module):
    """Position self-attention over the spatial positions of a feature map.

    Args:
        channels: Number of channels ``C`` of the input map.
        reduction: Channel reduction of query and key (``C // reduction`` channels).

    Example:
        >>> import torch
        >>> attention = SelfAttention2d(64)
        >>> x = torch.randn(2, 64, 8, 8)
        >>> torch.equal(attention(x), x)  # gamma starts at 0
        True
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        if channels // reduction < 1:
            msg = f"SelfAttention2d needs at least {reduction} channels, got {channels}; use a wider feature map."
            raise ValueError(msg)
        self.query_conv = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.key_conv = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.value_conv = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``gamma * attention(x) + x`` with the same shape (and memory format) as ``x``."""
        batch, channels, height, width = x.shape
        positions = height * width
        # [B, N, C'] layout for query, key and value; N = H * W positions. Going through
        # [B, H, W, C'] makes this a free view for channels-last maps (the fast inference path).
        query = self.query_conv(x).permute(0, 2, 3, 1).reshape(batch, positions, -1)
        key = self.key_conv(x).permute(0, 2, 3, 1).reshape(batch, positions, -1)
        value = self.value_conv(x).permute(0, 2, 3, 1).reshape(batch, positions, channels)
        # softmax(Q K^T) V without the usual 1/sqrt(d) scaling, as in SAGAN. Written out rather
        # than F.scaled_dot_product_attention: query/key and value widths differ, so PyTorch would
        # take its generic path anyway, with extra masking passes.
        weights = torch.softmax(torch.bmm(query, key.transpose(1, 2)), dim=-1)
        attended = torch.bmm(weights, value).reshape(batch, height, width, channels).permute(0, 3, 1, 2)
        return torch.addcmul(x, self.gamma, attended)
