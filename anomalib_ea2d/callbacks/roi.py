"""Region of interest: anomaly maps limited to the anatomy (brain, body, fundus field of view).

Medical images have a background (black around a skull-stripped brain, the dark corners of a fundus
photograph) where a reconstruction model's errors mean nothing, yet the image score is the map's
maximum, so edge and background responses can outrank a lesion. :class:`Foreground` computes the
anatomy from the input itself — intensity threshold, then a morphological closing (fills dark
structures inside, such as ventricles) and an erosion (drops the rim) — with tensor operations only
(``max_pool2d``), so it runs inside the model's graph and exports to ONNX/OpenVINO.

Two ways to use it:

- Any anomalib model (PatchCore, Reverse Distillation, ...): the :class:`RegionOfInterest` callback
  (``--trainer.callbacks+=anomalib_ea2d.RegionOfInterest``) adds a forward hook to the model's torch
  model that zeroes the anomaly map outside the ROI and takes the image score again as the maximum
  (or ``score_reduction``) of the masked map. Limits: the hook is not part of the checkpoint — pass
  the callback again when testing/predicting from a checkpoint, and export in the same process
  (``Engine.export`` after ``fit``/``test`` with the callback); ``anomalib export --ckpt_path``
  alone exports the model without ROI. It replaces the model's own image score (PatchCore's
  re-weighted nearest-neighbour score becomes the maximum of the masked map).
- A model that applies a region of interest itself implements :class:`AppliesRegionOfInterest`
  (its Lightning module has ``set_region_of_interest(foreground)``); the callback then hands it the
  :class:`Foreground` instead of adding its hook, and the model keeps its own image score. EA2D does
  this (``EA2D(roi=True)`` or ``--model.roi '{threshold: 0.05, closing: 7, erosion: 2}'`` sets it
  from the start: the ROI is then part of the model, saved with the checkpoint's hyper-parameters
  and included in every export).

Either way the torch model's ``roi_foreground`` (:data:`ROI_ATTRIBUTE`) holds the :class:`Foreground`
in use; a model that has one already is left as it is.

The threshold is in the intensity units of the image *before* normalisation ([0, 1]); the
normalisation (mean/std) is read from the model's pre-processor, so the ROI is the same whatever
normalisation the model uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn
from torch.nn import functional as F  # noqa: N812

from anomalib_ea2d.models.components.score_reduction import SCORE_REDUCTIONS, ScoreReduction, reduce_map

logger = logging.getLogger(__name__)

ROI_ATTRIBUTE = "roi_foreground"
"""Attribute of the torch model (``pl_module.model``) that holds the :class:`Foreground` in use, if any."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    return F.max_pool2d(mask, kernel_size=2 * radius + 1, stride=1, padding=radius)


def _erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    return 1.0 - _dilate(1.0 - mask, radius)


class Foreground(nn.Module):
    """0/1 foreground mask of a batch of (normalised) images: threshold, closing, erosion.

    Args:
        threshold: Intensity (mean over channels, in [0, 1] before normalisation) above which a
            pixel is foreground.
        closing: Radius in pixels of the closing (dilation then erosion) that fills dark holes
            inside the foreground; 0 disables it.
        erosion: Radius in pixels of the final erosion that drops the foreground's rim; 0 disables it.
        mean: Per-channel mean the images were normalised with (ImageNet's by default).
        std: Per-channel standard deviation the images were normalised with.

    Example:
        >>> import torch
        >>> roi = Foreground(threshold=0.5, closing=0, erosion=0, mean=(0.0,), std=(1.0,))
        >>> image = torch.zeros(1, 1, 4, 4)
        >>> image[..., 1:3, 1:3] = 1.0
        >>> roi(image)[0, 0].int().tolist()
        [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """

    def __init__(
        self,
        threshold: float = 0.05,
        closing: int = 7,
        erosion: int = 2,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if closing < 0 or erosion < 0:
            msg = f"Foreground closing and erosion radii must be >= 0 pixels, got closing={closing}, erosion={erosion}."
            raise ValueError(msg)
        if len(mean) != len(std) or any(s <= 0 for s in std):
            msg = f"Foreground mean and std need one value per channel and std > 0, got mean={mean}, std={std}."
            raise ValueError(msg)
        self.threshold = float(threshold)
        self.closing = int(closing)
        self.erosion = int(erosion)
        # Not persistent: adding an ROI to a model does not change its state dict.
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 1, H, W]`` float mask (1 inside) of normalised ``[B, C, H, W]`` images."""
        intensity = (images * self.std + self.mean).mean(dim=1, keepdim=True)
        mask = (intensity > self.threshold).to(images.dtype)
        if self.closing:
            mask = _erode(_dilate(mask, self.closing), self.closing)
        if self.erosion:
            mask = _erode(mask, self.erosion)
        return mask

    def extra_repr(self) -> str:
        """Show the settings in ``print(model)``."""
        return f"threshold={self.threshold}, closing={self.closing}, erosion={self.erosion}"


def input_normalization(pre_processor: nn.Module | None) -> tuple[list[float], list[float]]:
    """Mean and std of the ``Normalize`` in an anomalib pre-processor's transform (``[0], [1]`` if none).

    Example:
        >>> from anomalib.pre_processing import PreProcessor
        >>> from torchvision.transforms.v2 import Compose, Normalize, Resize
        >>> input_normalization(PreProcessor(transform=Compose([Resize((64, 64)), Normalize([0.5], [0.25])])))
        ([0.5], [0.25])
    """
    from torchvision.transforms.v2 import Normalize  # noqa: PLC0415 - keeps import of this module light

    transform = getattr(pre_processor, "transform", None)
    stack = [transform] if transform is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, Normalize):
            return [float(v) for v in current.mean], [float(v) for v in current.std]
        stack.extend(getattr(current, "transforms", []))
    return [0.0], [1.0]


def foreground_for(module: nn.Module, settings: bool | dict[str, Any] | None) -> Foreground | None:
    """The :class:`Foreground` described by ``settings`` (``True``: defaults) for ``module``'s pre-processor."""
    if settings is None or settings is False:
        return None
    options = {} if settings is True else dict(settings)
    unknown = set(options) - {"threshold", "closing", "erosion"}
    if unknown:
        msg = f"Unknown ROI settings {sorted(unknown)}; use threshold, closing and erosion (or roi: true)."
        raise ValueError(msg)
    mean, std = input_normalization(getattr(module, "pre_processor", None))
    return Foreground(**options, mean=mean, std=std)


@runtime_checkable
class AppliesRegionOfInterest(Protocol):
    """A Lightning module that applies a region of interest itself, with its own image score.

    :class:`RegionOfInterest` calls ``set_region_of_interest`` once, before any validation, test or
    prediction, unless the torch model already holds a :class:`Foreground` in ``roi_foreground``.
    The module must then mask its anomaly maps and score inside ``foreground`` in eval mode and keep
    the foreground in ``self.model.roi_foreground`` (:data:`ROI_ATTRIBUTE`), so that a second
    callback, or the same one in a later run, leaves it as it is.
    """

    def set_region_of_interest(self, foreground: Foreground) -> None:
        """Apply ``foreground`` to the module's anomaly maps and image scores from now on."""


class _ROIHook:
    """Forward hook: mask an eval-mode ``InferenceBatch``'s anomaly map and recompute its score."""

    def __init__(self, foreground: Foreground, score_reduction: ScoreReduction, top_k_fraction: float) -> None:
        self.foreground = foreground
        self.score_reduction = score_reduction
        self.top_k_fraction = top_k_fraction

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:  # noqa: ANN401
        anomaly_map = getattr(output, "anomaly_map", None)
        if module.training or anomaly_map is None or not hasattr(output, "_replace"):
            return output
        roi = self.foreground(args[0])
        shape = anomaly_map.shape
        as_4d = anomaly_map if anomaly_map.dim() == 4 else anomaly_map.unsqueeze(1)
        if roi.shape[-2:] != as_4d.shape[-2:]:
            roi = F.interpolate(roi, size=as_4d.shape[-2:], mode="nearest")
        masked = as_4d * roi
        score = reduce_map(masked, self.score_reduction, self.top_k_fraction)
        return output._replace(anomaly_map=masked.reshape(shape), pred_score=score)


class RegionOfInterest(Callback):
    """Restrict any anomalib model's anomaly maps and image scores to the input's foreground.

    Installs, once, a forward hook on the Lightning module's torch model (``pl_module.model``)
    that zeroes the eval-mode anomaly map outside :class:`Foreground` and takes the image score
    again from the masked map. A module that implements :class:`AppliesRegionOfInterest` (EA2D)
    gets the foreground through its ``set_region_of_interest`` instead, and keeps its own scores
    (EA2D: per view, with its ``score_reduction``). The hook runs in validation, test, predict and
    in an export made in the same process; see the module docstring for its limits.

    Args:
        threshold: See :class:`Foreground`.
        closing: See :class:`Foreground`.
        erosion: See :class:`Foreground`.
        score_reduction: ``"max"`` (anomalib's usual image score), ``"mean"`` or ``"topk"``.
        top_k_fraction: Fraction of the map averaged by ``"topk"``.

    Example:
        >>> callback = RegionOfInterest(threshold=0.05, erosion=2)
        >>> callback.settings
        {'threshold': 0.05, 'closing': 7, 'erosion': 2}
    """

    def __init__(
        self,
        threshold: float = 0.05,
        closing: int = 7,
        erosion: int = 2,
        score_reduction: ScoreReduction = "max",
        top_k_fraction: float = 0.01,
    ) -> None:
        if score_reduction not in SCORE_REDUCTIONS:
            msg = f"RegionOfInterest score_reduction must be one of {SCORE_REDUCTIONS}, got {score_reduction!r}."
            raise ValueError(msg)
        self.settings = {"threshold": threshold, "closing": closing, "erosion": erosion}
        self.score_reduction = score_reduction
        self.top_k_fraction = top_k_fraction

    def apply(self, pl_module: LightningModule) -> None:
        """Install the hook on ``pl_module.model`` (no-op if this module already has an ROI hook)."""
        model = getattr(pl_module, "model", None)
        if not isinstance(model, nn.Module):
            name = type(pl_module).__name__
            msg = f"RegionOfInterest needs an anomalib model with its torch model in .model; {name} has none."
            raise TypeError(msg)
        if isinstance(getattr(model, ROI_ATTRIBUTE, None), nn.Module):
            return  # already has a region of interest (e.g. EA2D(roi=...), or this callback ran before)
        foreground = foreground_for(pl_module, self.settings)
        assert foreground is not None
        if isinstance(pl_module, AppliesRegionOfInterest):  # its own ROI input, its own image score
            pl_module.set_region_of_interest(foreground)
        else:
            model.add_module(ROI_ATTRIBUTE, foreground)  # moves with the model (.to(device))
            model.register_forward_hook(_ROIHook(foreground, self.score_reduction, self.top_k_fraction))
        logger.info("Region of interest on %s: %s.", type(pl_module).__name__, foreground.extra_repr())

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Install the hook before any validation, test or prediction."""
        del trainer, stage
        self.apply(pl_module)


__all__ = [
    "ROI_ATTRIBUTE",
    "AppliesRegionOfInterest",
    "Foreground",
    "RegionOfInterest",
    "foreground_for",
    "input_normalization",
]
