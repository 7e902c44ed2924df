"""PyTorch model of EA2D (Encoder-Attention-2Decoders reconstruction).

EA2D (Tang et al., IEEE TMI 2025) encodes two views of an image with one shared ResNet: the image
itself and the image rotated by 180 degrees. For each view, self-attention refines the encoder's
second and third feature maps, and a view-specific decoder rebuilds the first three encoder maps
from the deepest one plus these attention skips. Anomalies are where the reconstruction fails.

In training mode :class:`EA2DModel` returns :class:`EA2DFeatures` for :class:`~anomalib_ea2d.EA2DLoss`;
in eval mode it returns anomalib's :class:`~anomalib.data.InferenceBatch` with an image score and an
anomaly map at the input size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_ea2d.anomaly_map import AnomalyMapGenerator, ScoreReduction, rotate180
from anomalib_ea2d.backbone import create_encoder
from anomalib_ea2d.components import EA2DDecoder, SelfAttention2d, StageSpec
from anomalib_ea2d.components.fusion import FoldedGraphCache

SUPPORTED_BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "wide_resnet50_2")
"""ResNet families the decoder can mirror (a timm pretrained tag such as ``resnet50.a1_in1k`` is allowed)."""

INPUT_MULTIPLE = 32
"""Input height and width must be multiples of the encoder's total stride."""


def _is_tracing() -> bool:
    """Whether the model is being traced or compiled (export, ``torch.compile``, fx), not run."""
    return (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
        or torch.onnx.is_in_onnx_export()
        or _is_fx_symbolic_tracing()
    )


def _is_fx_symbolic_tracing() -> bool:
    symbolic_trace = torch.fx._symbolic_trace  # noqa: SLF001
    check = getattr(symbolic_trace, "is_fx_symbolic_tracing", None) or symbolic_trace.is_fx_tracing
    return bool(check())


@dataclass
class EA2DFeatures:
    """Training-mode output of :class:`EA2DModel`, consumed by :class:`~anomalib_ea2d.EA2DLoss`.

    Attributes:
        encoder: Per view, the encoder maps ``[e1, e2, e3]`` (the reconstruction targets).
        decoder: Per view, the decoder's reconstructions ``[d1, d2, d3]``.
        pooled: Per view, the globally average-pooled deepest encoder map ``GAP(e4)``, ``[B, C4]``.
    """

    encoder: list[list[torch.Tensor]]
    decoder: list[list[torch.Tensor]]
    pooled: list[torch.Tensor]


class ViewBranch(nn.Module):
    """Attention skips and decoder of one view (instantiated once per view).

    Args:
        block: Decoder block type, ``"bottleneck"`` or ``"basic"``.
        stages: Specs of the encoder's four stages.
    """

    def __init__(self, block: str, stages: list[StageSpec]) -> None:
        super().__init__()
        self.attention_e2 = SelfAttention2d(stages[1].out_channels)
        self.attention_e3 = SelfAttention2d(stages[2].out_channels)
        self.decoder = EA2DDecoder(block, stages)

    def forward(self, e2: torch.Tensor, e3: torch.Tensor, e4: torch.Tensor) -> list[torch.Tensor]:
        """Reconstruct ``[e1, e2, e3]`` of this view."""
        return self.decoder(e4, self.attention_e3(e3), self.attention_e2(e2))


def _stage_specs(encoder: nn.Module) -> tuple[str, list[StageSpec]]:
    """Read block type, widths, channels and depths of the four ResNet stages of a timm encoder."""
    channels = encoder.feature_info.channels()
    stages = [getattr(encoder, f"layer{index}") for index in (1, 2, 3, 4)]
    block = "bottleneck" if hasattr(stages[0][0], "conv3") else "basic"
    specs = [
        StageSpec(out_channels=out, width=stage[0].conv1.out_channels, num_blocks=len(stage))
        for out, stage in zip(channels, stages, strict=True)
    ]
    return block, specs


class EA2DModel(nn.Module):
    """EA2D: shared ResNet encoder, attention skips and two decoders, one per view.

    Args:
        backbone: ResNet encoder (``resnet50`` default; ``resnet18``, ``resnet34``,
            ``wide_resnet50_2``; a timm pretrained tag such as ``resnet50.a1_in1k`` may be added).
        pre_trained: Load ImageNet weights for the encoder through timm (the torchvision weights,
            ``.tv_in1k``, unless the backbone names another tag).
        backbone_weights: Path of a local torchvision- or timm-format ResNet checkpoint to load
            into the encoder instead of downloading (for machines without network access).
        freeze_encoder_bn: Keep the encoder's BatchNorms in eval mode while training.
        score_reduction: Per-view image score, ``"max"``, ``"mean"`` or ``"topk"`` of the anomaly map.
        sigma: Gaussian smoothing of the anomaly map (0: none, as the reference).
        bn_momentum: If given, the momentum of every BatchNorm in the model.
        roi: Module mapping the input images to a ``[B, 1, H, W]`` 0/1 region of interest (e.g.
            :class:`~anomalib_ea2d.roi.Foreground`); the map is zero outside it and the score taken
            inside it. ``None`` (the paper): the whole image.
        top_k_fraction: Fraction of the map averaged by the ``"topk"`` score reduction.

    In eval mode (every BatchNorm using running statistics) the forward pass runs a fast path
    with the same outputs to float rounding: the BatchNorms are folded into the convolutions
    before them (graphs traced once, reading the live parameters) and the features are kept
    channels-last. Export and ``torch.compile`` trace the plain modules instead.

    Example:
        >>> import torch
        >>> model = EA2DModel(backbone="resnet18", pre_trained=False).eval()
        >>> output = model(torch.randn(1, 3, 64, 64))
        >>> output.pred_score.shape, output.anomaly_map.shape
        (torch.Size([1]), torch.Size([1, 1, 64, 64]))
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        pre_trained: bool = True,
        backbone_weights: str | Path | None = None,
        freeze_encoder_bn: bool = False,
        score_reduction: ScoreReduction = "max",
        sigma: float = 0.0,
        bn_momentum: float | None = None,
        roi: nn.Module | None = None,
        top_k_fraction: float = 0.01,
    ) -> None:
        super().__init__()
        if backbone.split(".", maxsplit=1)[0] not in SUPPORTED_BACKBONES:
            msg = f"Unknown EA2D backbone {backbone!r}; choose one of {', '.join(SUPPORTED_BACKBONES)}."
            raise ValueError(msg)
        self.freeze_encoder_bn = freeze_encoder_bn
        self.encoder = create_encoder(backbone, pre_trained=pre_trained, weights_path=backbone_weights)
        block, specs = _stage_specs(self.encoder)
        self.branches = nn.ModuleList([ViewBranch(block, specs) for _ in range(2)])
        self.anomaly_map_generator = AnomalyMapGenerator(
            score_reduction=score_reduction, sigma=sigma, top_k_fraction=top_k_fraction
        )
        self.roi_foreground = roi
        self.second_view: Callable[[torch.Tensor], torch.Tensor] = rotate180
        """Transformation making the second view in training; inference always uses ``rotate180``."""
        self.fast_inference = True
        """Use the BatchNorm-folded, channels-last path in eval mode (set ``False`` to run the plain modules)."""
        self._folded = FoldedGraphCache(leaves=(SelfAttention2d,))
        if bn_momentum is not None:
            if not 0.0 <= bn_momentum <= 1.0:
                msg = f"bn_momentum must be in [0, 1], got {bn_momentum}."
                raise ValueError(msg)
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):  # noqa: SLF001
                    module.momentum = bn_momentum

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:  # noqa: ANN401
        """Load an ``EA2DModel`` state dict; a reference-code state dict raises an error naming the converter."""
        from anomalib_ea2d.checkpoint import check_not_reference_state_dict  # noqa: PLC0415 - keeps imports light

        check_not_reference_state_dict(state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def train(self, mode: bool = True) -> EA2DModel:
        """Set train/eval mode; with ``freeze_encoder_bn`` the encoder's BatchNorms stay in eval mode."""
        super().train(mode)
        if mode and self.freeze_encoder_bn:
            for module in self.encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):  # noqa: SLF001
                    module.eval()
        return self

    def _encoder_uses_batch_stats(self) -> bool:
        return any(
            module.training
            for module in self.encoder.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)  # noqa: SLF001
        )

    def _fast_path(self) -> bool:
        """Eval mode, every BatchNorm on running statistics, and nothing tracing the model."""
        if self.training or not self.fast_inference or _is_tracing():
            return False
        return not any(
            module.training
            for module in self.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)  # noqa: SLF001
        )

    def _folded_views(
        self, view1: torch.Tensor, view2: torch.Tensor
    ) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]]]:
        """Encoder maps and reconstructions of both views through the BatchNorm-folded graphs."""
        batch = view1.shape[0]
        both = torch.cat([view1, view2]).contiguous(memory_format=torch.channels_last)
        features = self._folded.get(self.encoder)(both)
        encoded = [[f[:batch] for f in features], [f[batch:] for f in features]]
        decoded = [
            self._folded.get(branch)(e2, e3, e4) for branch, (_, e2, e3, e4) in zip(self.branches, encoded, strict=True)
        ]
        return encoded, decoded

    def encode_views(self, view1: torch.Tensor, view2: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Encode both views with the shared encoder.

        With batch statistics in the encoder's BatchNorms the views are encoded separately (each
        view normalised by its own statistics, as in the reference); otherwise in one batched pass.
        """
        if self._encoder_uses_batch_stats() or view1.shape != view2.shape:
            return self.encoder(view1), self.encoder(view2)
        features = self.encoder(torch.cat([view1, view2]))
        batch = view1.shape[0]
        return [f[:batch] for f in features], [f[batch:] for f in features]

    def features(self, images: torch.Tensor) -> EA2DFeatures:
        """Encoder targets, decoder reconstructions and pooled deepest maps of both views.

        The second view is ``second_view(images)`` in training mode and the 180-degree rotation in
        eval mode. Used by :meth:`forward`; call it directly for the loss of a model in eval mode.
        """
        height, width = images.shape[-2:]
        if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
            msg = (
                f"EA2D needs input height and width that are multiples of {INPUT_MULTIPLE}, got {height}x{width}; "
                f"resize the images (e.g. the model's pre-processor image_size) to a multiple of {INPUT_MULTIPLE}."
            )
            raise ValueError(msg)
        view2 = self.second_view(images) if self.training else rotate180(images)
        if self._fast_path():
            encoded, decoded = self._folded_views(images, view2)
        else:
            encoded = self.encode_views(images, view2)
            decoded = [branch(e2, e3, e4) for branch, (_, e2, e3, e4) in zip(self.branches, encoded, strict=True)]
        return EA2DFeatures(
            encoder=[features[:3] for features in encoded],
            decoder=decoded,
            pooled=[features[3].mean(dim=(2, 3)) for features in encoded],
        )

    def forward(self, images: torch.Tensor) -> EA2DFeatures | InferenceBatch:
        """Encode, refine and reconstruct both views.

        Args:
            images: ``[B, 3, H, W]`` normalised images, ``H`` and ``W`` multiples of 32.

        Returns:
            :class:`EA2DFeatures` in training mode, :class:`~anomalib.data.InferenceBatch` with
            ``pred_score`` ``[B]`` and ``anomaly_map`` ``[B, 1, H, W]`` in eval mode.
        """
        features = self.features(images)
        if self.training:
            return features
        roi = self.roi_foreground(images) if self.roi_foreground is not None else None
        anomaly_map, pred_score = self.anomaly_map_generator(
            features.encoder[0], features.decoder[0], features.encoder[1], features.decoder[1], images.shape[-2:], roi
        )
        return InferenceBatch(pred_score=pred_score, anomaly_map=anomaly_map.contiguous())


__all__ = ["SUPPORTED_BACKBONES", "EA2DFeatures", "EA2DModel", "ViewBranch"]
