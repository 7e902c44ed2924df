"""BatchNorm folding for inference: each eval-mode BatchNorm merged into the convolution before it.

In eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` is one convolution with
scaled weights and a shifted bias, which saves one pass over every feature map. The merged
convolutions come from torch's own :func:`torch.nn.utils.fusion.fuse_conv_bn_eval`; this module
only finds the pairs in EA2D's ResNet encoder and decoder. Used by
:meth:`anomalib_ea2d.EA2DModel.fuse`, which works on a copy.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from anomalib_ea2d.models.components.batchnorm import FrozenStatisticsBatchNorm2d

FOLDABLE_BATCHNORMS = (nn.BatchNorm2d, FrozenStatisticsBatchNorm2d)
"""Layers that normalise with running statistics in eval mode (the frozen ones always)."""

COMMUTING_UPSAMPLING = ("nearest", "bilinear")
"""Upsampling modes that commute with a per-channel affine map (each output is a convex combination)."""


def _passes_affine_maps(module: nn.Module) -> bool:
    """Whether ``module`` sits between a conv and its BatchNorm without changing the folded result."""
    return isinstance(module, nn.Identity) or (isinstance(module, nn.Upsample) and module.mode in COMMUTING_UPSAMPLING)


def conv_batchnorm_pairs(module: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """``(parent, conv name, BatchNorm name)`` of every ``BatchNorm2d`` that normalises a ``Conv2d``'s output.

    ResNet blocks (timm's and EA2D's decoder blocks) name the pairs ``convK`` / ``bnK``; in a
    ``Sequential`` (downsample and shortcut paths) the BatchNorm follows the convolution, possibly
    after an identity or a nearest/bilinear upsampling.

    Example:
        >>> from torch import nn
        >>> block = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Upsample(scale_factor=2), nn.BatchNorm2d(8))
        >>> [(conv, bn) for _, conv, bn in conv_batchnorm_pairs(block)]
        [('0', '2')]
    """
    pairs = []
    for parent in module.modules():
        children = dict(parent.named_children())
        names = list(children)
        for index, name in enumerate(names):
            if type(children[name]) not in FOLDABLE_BATCHNORMS:
                continue
            if isinstance(parent, nn.Sequential):
                previous = index - 1
                while previous >= 0 and _passes_affine_maps(children[names[previous]]):
                    previous -= 1
                conv_name = names[previous] if previous >= 0 else ""
            else:
                conv_name = "conv" + name.removeprefix("bn") if name.startswith("bn") else ""
            if type(children.get(conv_name)) is nn.Conv2d:
                pairs.append((parent, conv_name, name))
    return pairs


def fold_batchnorms_(module: nn.Module) -> int:
    """Fold, in place, every BatchNorm of an eval-mode ``module`` into its convolution; return how many.

    Each convolution is replaced by the merged one and its BatchNorm by ``nn.Identity``. The
    result computes the same outputs (to float rounding) only in eval mode and has no BatchNorm
    left to train.

    Raises:
        ValueError: If ``module`` is in training mode (BatchNorms would use batch statistics).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
        >>> x = torch.randn(2, 3, 16, 16)
        >>> expected = net(x)
        >>> fold_batchnorms_(net), torch.allclose(net(x), expected, atol=1e-6), type(net[1]).__name__
        (1, True, 'Identity')
    """
    if any(m.training for m in module.modules()):
        msg = "BatchNorm folding needs a module in eval mode; call .eval() on it (or on a copy) first."
        raise ValueError(msg)
    pairs = conv_batchnorm_pairs(module)
    for parent, conv_name, bn_name in pairs:
        setattr(parent, conv_name, fuse_conv_bn_eval(getattr(parent, conv_name), getattr(parent, bn_name)))
        setattr(parent, bn_name, nn.Identity())
    return len(pairs)


__all__ = ["conv_batchnorm_pairs", "fold_batchnorms_"]
