"""ResNet encoder of EA2D: timm feature extractor with ImageNet or local weights.

The encoder returns the outputs of the four ResNet stages (strides 4, 8, 16, 32). Weights come
from timm's pretrained registry (the torchvision ImageNet weights by default, as the paper's
reference code uses) or from a local checkpoint file for machines without network access.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from torch import nn

logger = logging.getLogger(__name__)

DEFAULT_PRETRAINED_TAG = "tv_in1k"
"""timm tag of the torchvision ImageNet weights, used when the backbone name carries no tag."""


def _with_tag(backbone: str) -> str:
    return backbone if "." in backbone else f"{backbone}.{DEFAULT_PRETRAINED_TAG}"


def _unwrap_state_dict(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """Take the backbone's tensors out of a torchvision/timm file, a wrapped dict or a DataParallel dict."""
    if isinstance(checkpoint, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in checkpoint and isinstance(checkpoint[key], Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        msg = (
            f"Backbone weights file {path} does not hold a state dict of tensors; "
            "save it with torch.save(model.state_dict())."
        )
        raise ValueError(msg)
    state = {str(k).removeprefix("module."): v for k, v in checkpoint.items()}
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def load_backbone_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load a local torchvision- or timm-format ResNet checkpoint into a timm feature encoder.

    The classifier (``fc.*``) is ignored. Missing, unexpected or mis-shaped tensors raise a
    ``ValueError`` listing them.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"Backbone weights file {path} does not exist; pass the path of a ResNet checkpoint (.pth/.pt/.bin)."
        raise FileNotFoundError(msg)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        msg = f"Backbone weights file {path} could not be read by torch.load ({error}); pass a torch state-dict file."
        raise ValueError(msg) from error
    state = _unwrap_state_dict(checkpoint, path)
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        details = "; ".join(
            part
            for part in (
                f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}" if missing else "",
                f"unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}" if unexpected else "",
                f"wrong shapes {mismatched[:8]}{' ...' if len(mismatched) > 8 else ''}" if mismatched else "",
            )
            if part
        )
        msg = (
            f"Backbone weights file {path} does not fit this backbone ({details}); use a checkpoint of the same ResNet."
        )
        raise ValueError(msg)
    encoder.load_state_dict(state)


def create_encoder(backbone: str, pre_trained: bool, weights_path: str | Path | None = None) -> nn.Module:
    """Build a timm ResNet that returns the outputs of ``layer1`` .. ``layer4``.

    Args:
        backbone: timm model name, optionally with a pretrained tag (``resnet50.a1_in1k``).
        pre_trained: Download (or take from the local cache) ImageNet weights through timm.
        weights_path: Local checkpoint to load instead; takes precedence over ``pre_trained``.

    Raises:
        RuntimeError: If ``pre_trained`` weights cannot be obtained (e.g. no network access).
    """
    name = backbone.split(".", maxsplit=1)[0]
    if weights_path is not None:
        encoder = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
        load_backbone_weights(encoder, weights_path)
        return encoder
    if not pre_trained:
        logger.warning("EA2D encoder %s starts from random weights (pre_trained=False, no backbone_weights).", name)
        return timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
    try:
        return timm.create_model(_with_tag(backbone), pretrained=True, features_only=True, out_indices=(1, 2, 3, 4))
    except Exception as error:
        msg = (
            f"Could not obtain ImageNet weights for backbone {_with_tag(backbone)!r} "
            f"({type(error).__name__}: {error}); "
            "on a machine without network access pass backbone_weights=/path/to/resnet.pth "
            "(a torchvision or timm checkpoint), or pre_trained=False to train from scratch."
        )
        raise RuntimeError(msg) from error
