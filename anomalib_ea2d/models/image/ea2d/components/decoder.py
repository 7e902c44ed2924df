"""EA2D decoder: the mirror image of a ResNet encoder without its deepest stage.

The decoder takes the deepest encoder map ``e4`` and rebuilds ``(e1, e2, e3)`` through three
stages named after the encoder stages they mirror (``layer3``, ``layer2``, ``layer1``). The
first block of every stage doubles the resolution with bilinear upsampling. Between stages the
attention-refined encoder skips are added: ``layer2`` sees ``layer3(e4) + skip3`` and ``layer1``
sees ``layer2(...) + skip2``.

One block type per ResNet family is provided: :class:`UpBottleneck` for ResNet-50 and wide
ResNets, :class:`UpBasicBlock` for ResNet-18/34. The stage widths are read off the encoder, so
the same code serves every supported backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


def _upsample() -> nn.Upsample:
    return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)


def _shortcut(in_channels: int, out_channels: int, upsample: bool) -> nn.Module | None:
    """1x1 conv -> (bilinear x2) -> BN, or ``None`` for an identity shortcut."""
    if not upsample and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        _upsample() if upsample else nn.Identity(),
        nn.BatchNorm2d(out_channels),
    )


class UpBottleneck(nn.Module):
    """Bottleneck block whose optional upsampling sits where the encoder block strides.

    ``1x1 -> BN -> ReLU -> (bilinear x2) -> 3x3 -> BN -> ReLU -> 1x1 -> BN``, plus the shortcut,
    then ReLU.

    Args:
        in_channels: Input channels.
        width: Channels of the inner 3x3 convolution.
        out_channels: Output channels.
        upsample: Whether this block doubles the spatial resolution.

    Example:
        >>> import torch
        >>> block = UpBottleneck(2048, 256, 1024, upsample=True)
        >>> block(torch.randn(1, 2048, 2, 2)).shape
        torch.Size([1, 1024, 4, 4])
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, upsample: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.upsample = _upsample() if upsample else nn.Identity()
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(self.upsample(out))))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class UpBasicBlock(nn.Module):
    """Basic block (two 3x3 convolutions) with optional bilinear upsampling between them.

    ``3x3 -> BN -> ReLU -> (bilinear x2) -> 3x3 -> BN``, plus the shortcut, then ReLU.

    Args:
        in_channels: Input channels.
        width: Channels of the first 3x3 convolution.
        out_channels: Output channels.
        upsample: Whether this block doubles the spatial resolution.

    Example:
        >>> import torch
        >>> block = UpBasicBlock(512, 256, 256, upsample=True)
        >>> block(torch.randn(1, 512, 2, 2)).shape
        torch.Size([1, 256, 4, 4])
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, upsample: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.upsample = _upsample() if upsample else nn.Identity()
        self.conv2 = nn.Conv2d(width, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(in_channels, out_channels, upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(self.upsample(out)))
        return self.relu(out + identity)


BLOCKS: dict[str, type[nn.Module]] = {"bottleneck": UpBottleneck, "basic": UpBasicBlock}


@dataclass(frozen=True)
class StageSpec:
    """Shape of one encoder stage, as mirrored by the decoder.

    Attributes:
        out_channels: Channels the stage outputs (and the decoder must reconstruct).
        width: Inner width of the stage's blocks.
        num_blocks: Number of blocks in the stage.
    """

    out_channels: int
    width: int
    num_blocks: int


class EA2DDecoder(nn.Module):
    """Decoder that reconstructs ``(e1, e2, e3)`` from ``e4`` and two skip maps.

    Args:
        block: ``"bottleneck"`` or ``"basic"``.
        stages: Specs of encoder stages 1..4 (stage 4 only gives the input channels).

    Example:
        >>> import torch
        >>> stages = [StageSpec(64, 64, 2), StageSpec(128, 128, 2), StageSpec(256, 256, 2), StageSpec(512, 512, 2)]
        >>> decoder = EA2DDecoder("basic", stages)
        >>> e4, s3, s2 = torch.randn(1, 512, 2, 2), torch.randn(1, 256, 4, 4), torch.randn(1, 128, 8, 8)
        >>> [f.shape[1] for f in decoder(e4, s3, s2)]
        [64, 128, 256]
    """

    def __init__(self, block: str, stages: Sequence[StageSpec]) -> None:
        super().__init__()
        if block not in BLOCKS:
            msg = f"Decoder block must be one of {sorted(BLOCKS)}, got {block!r}."
            raise ValueError(msg)
        block_cls = BLOCKS[block]
        in_channels = stages[3].out_channels
        # Registered deepest first, so the state dict lists layer3, layer2, layer1.
        for index in (3, 2, 1):
            spec = stages[index - 1]
            blocks = [block_cls(in_channels, spec.width, spec.out_channels, upsample=True)]
            blocks += [
                block_cls(spec.out_channels, spec.width, spec.out_channels, upsample=False)
                for _ in range(spec.num_blocks - 1)
            ]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            in_channels = spec.out_channels

    def forward(self, e4: torch.Tensor, skip3: torch.Tensor, skip2: torch.Tensor) -> list[torch.Tensor]:
        """Return the reconstructions ``[d1, d2, d3]`` of ``(e1, e2, e3)``."""
        d3 = self.layer3(e4)
        d2 = self.layer2(d3 + skip3)
        d1 = self.layer1(d2 + skip2)
        return [d1, d2, d3]
