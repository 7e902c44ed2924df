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

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_ea2d.models.components.backbone import create_encoder
from anomalib_ea2d.models.components.batchnorm import freeze_batchnorm_statistics, set_batchnorm_momentum
from anomalib_ea2d.models.components.fusion import fold_batchnorms_
from anomalib_ea2d.models.image.ea2d.anomaly_map import AnomalyMapGenerator, ScoreReduction, rotate180, view_anomaly_map
from anomalib_ea2d.models.image.ea2d.components import EA2DDecoder, SelfAttention2d, StageSpec
from anomalib_ea2d.models.image.ea2d.components.standardization import MapStandardizer

SUPPORTED_BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "wide_resnet50_2")
"""ResNet families the decoder can mirror (a timm pretrained tag such as ``resnet50.a1_in1k`` is allowed)."""

INPUT_MULTIPLE = 32
"""Input height and width must be multiples of the encoder's total stride."""


def check_input_size(images: torch.Tensor) -> None:
    """Raise a ``ValueError`` unless the input height and width are multiples of :data:`INPUT_MULTIPLE`.

    Example:
        >>> check_input_size(torch.zeros(1, 3, 64, 96))
        >>> check_input_size(torch.zeros(1, 3, 64, 100))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: EA2D needs input height and width that are multiples of 32, got 64x100; ...
    """
    height, width = images.shape[-2:]
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        msg = (
            f"EA2D needs input height and width that are multiples of {INPUT_MULTIPLE}, got {height}x{width}; "
            f"resize the images (e.g. the model's pre-processor image_size) to a multiple of {INPUT_MULTIPLE}."
        )
        raise ValueError(msg)


def check_trainable_batch(images: torch.Tensor) -> None:
    """Raise a ``ValueError`` for a training batch whose deepest feature map holds one value per channel.

    At 32x32 px the deepest map is 1x1, so a batch of one image gives BatchNorm a single value per
    channel, which it cannot normalise in training.

    Example:
        >>> check_trainable_batch(torch.zeros(2, 3, 32, 32))
        >>> check_trainable_batch(torch.zeros(1, 3, 32, 32))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: EA2D cannot train on a batch of one 32x32 image: ...
    """
    batch, height, width = images.shape[0], *images.shape[-2:]
    if batch * (height // INPUT_MULTIPLE) * (width // INPUT_MULTIPLE) == 1:
        msg = (
            f"EA2D cannot train on a batch of one {height}x{width} image: its deepest feature map is 1x1, so "
            "BatchNorm gets one value per channel; use image_size 64 or more, or training batches of at "
            "least 2 images (a last batch of one comes from a training set of batch size x n + 1 images)."
        )
        raise ValueError(msg)


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
        freeze_encoder_bn: Normalise with the encoder's running BatchNorm statistics in training too and never
            update them (their affine parameters still train), as the reference's OCT2017 recipe.
        score_reduction: Per-view image score, ``"max"``, ``"mean"`` or ``"topk"`` of the anomaly map.
        sigma: Gaussian smoothing of the anomaly map (0: none, as the reference).
        bn_momentum: If given, the momentum of every BatchNorm in the model.
        num_views: ``2`` (the method) or ``1``: the image view only, for the ablation study; no
            second attention/decoder branch is built, training features repeat the one view (the
            loss must then weight the second view and the contrastive term with 0) and eval
            scores and maps come from the one view (without a region of interest).
        roi: Module mapping the input images to a ``[B, 1, H, W]`` 0/1 region of interest (e.g.
            :class:`~anomalib_ea2d.callbacks.roi.Foreground`); the map is zero outside it and the score taken
            inside it. ``None`` (the paper): the whole image.
        top_k_fraction: Fraction of the map averaged by the ``"topk"`` score reduction.
        standardize_maps: Standardise each view's map per position by the maps of normal training
            images (:class:`~anomalib_ea2d.models.image.ea2d.components.standardization.MapStandardizer`, fitted with
            :meth:`fit_map_statistics` before use); for roughly aligned images. ``False``: the paper.

    Eval mode runs the plain modules, both views through the encoder in one batched pass, on the
    input laid out channels-last (:attr:`channels_last_eval`; the weights stay as trained). For
    faster inference, :meth:`fuse` returns an eval copy with the BatchNorms folded into the
    convolutions and the weights channels-last (same outputs to float rounding); ``EA2D``'s
    validation, test and predict steps run such a copy.

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
        num_views: int = 2,
        roi: nn.Module | None = None,
        top_k_fraction: float = 0.01,
        standardize_maps: bool = False,
    ) -> None:
        super().__init__()
        if num_views not in {1, 2} or (num_views == 1 and roi is not None):
            msg = f"num_views must be 2 (image and rotated view) or 1 (image view only, no roi), got {num_views}."
            raise ValueError(msg)
        if backbone.split(".", maxsplit=1)[0] not in SUPPORTED_BACKBONES:
            msg = f"Unknown EA2D backbone {backbone!r}; choose one of {', '.join(SUPPORTED_BACKBONES)}."
            raise ValueError(msg)
        self.freeze_encoder_bn = freeze_encoder_bn
        self.encoder = create_encoder(backbone, pre_trained=pre_trained, weights_path=backbone_weights)
        block, specs = _stage_specs(self.encoder)
        self.num_views = num_views
        self.branches = nn.ModuleList([ViewBranch(block, specs) for _ in range(num_views)])
        self.anomaly_map_generator = AnomalyMapGenerator(
            score_reduction=score_reduction, sigma=sigma, top_k_fraction=top_k_fraction
        )
        if standardize_maps:
            self.anomaly_map_generator.standardizer = MapStandardizer(num_views)
        self.roi_foreground = roi
        self.second_view: Callable[[torch.Tensor], torch.Tensor] = rotate180
        """Transformation making the second view in training; inference always uses ``rotate180``."""
        if bn_momentum is not None:
            set_batchnorm_momentum(self, bn_momentum)
        if freeze_encoder_bn:  # in the layers themselves: holds whatever sets the modules' train/eval flags
            freeze_batchnorm_statistics(self.encoder)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:  # noqa: ANN401
        """Load an ``EA2DModel`` state dict; a reference-code state dict raises an error naming the converter."""
        from anomalib_ea2d.models.image.ea2d.checkpoint import check_not_reference_state_dict  # noqa: PLC0415 - keeps imports light

        check_not_reference_state_dict(state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _encoder_uses_batch_stats(self) -> bool:
        return any(
            module.training
            for module in self.encoder.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)  # noqa: SLF001
        )

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
        check_input_size(images)
        if self.training:
            if self.is_fused:
                msg = (
                    "This EA2DModel was fused for inference by EA2DModel.fuse() and has no BatchNorms to train; "
                    "train the model it was fused from and fuse it again."
                )
                raise RuntimeError(msg)
            check_trainable_batch(images)
        if not self.training and self.channels_last_eval:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.num_views == 1:
            return self._image_view_features(images)
        view2 = self.second_view(images) if self.training else rotate180(images)
        encoded = self.encode_views(images, view2)
        decoded = [branch(e2, e3, e4) for branch, (_, e2, e3, e4) in zip(self.branches, encoded, strict=True)]
        return EA2DFeatures(
            encoder=[features[:3] for features in encoded],
            decoder=decoded,
            pooled=[features[3].mean(dim=(2, 3)) for features in encoded],
        )

    @property
    def map_standardizer(self) -> MapStandardizer | None:
        """The per-position map standardisation (``standardize_maps=True``), else ``None``."""
        return self.anomaly_map_generator.standardizer

    def view_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Raw (not standardised) anomaly map of each view at feature resolution, ``[B, num_views, h, w]``."""
        features = self.features(images)
        pairs = zip(features.encoder[: self.num_views], features.decoder[: self.num_views], strict=True)
        return torch.cat([view_anomaly_map(encoder, decoder) for encoder, decoder in pairs], dim=1)

    @torch.no_grad()
    def fit_map_statistics(self, normal_images: Iterable[torch.Tensor]) -> int:
        """Fit :attr:`map_standardizer` on batches of normal (pre-processed) images; returns the image count.

        Runs in eval mode (the model's mode is restored after).
        """
        standardizer = self.map_standardizer
        if standardizer is None:
            msg = "fit_map_statistics needs a model built with standardize_maps=True."
            raise RuntimeError(msg)
        was_training = self.training
        self.eval()
        standardizer.reset()
        count = 0
        try:
            for images in normal_images:
                standardizer.update(self.view_maps(images))
                count += images.shape[0]
            standardizer.finish()
        finally:
            self.train(was_training)
        return count

    def _image_view_features(self, images: torch.Tensor) -> EA2DFeatures:
        """Features of the image view alone (``num_views=1``), repeated as two views for the loss."""
        encoded = self.encoder(images)
        decoded = self.branches[0](*encoded[1:])
        pooled = encoded[3].mean(dim=(2, 3))
        return EA2DFeatures(encoder=[encoded[:3]] * 2, decoder=[decoded] * 2, pooled=[pooled] * 2)

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
        if self.num_views == 1:
            generator = self.anomaly_map_generator
            view_map = generator.standardize(view_anomaly_map(features.encoder[0], features.decoder[0]), 0)
            return InferenceBatch(
                pred_score=generator.reduce(view_map), anomaly_map=generator.to_image(view_map, images.shape[-2:])
            )
        roi = self.roi_foreground(images) if self.roi_foreground is not None else None
        anomaly_map, pred_score = self.anomaly_map_generator(
            features.encoder[0], features.decoder[0], features.encoder[1], features.decoder[1], images.shape[-2:], roi
        )
        return InferenceBatch(pred_score=pred_score, anomaly_map=anomaly_map.contiguous())

    is_fused: bool = False
    """Whether this model is an inference copy made by :meth:`fuse` (its BatchNorms folded away)."""

    channels_last_eval: bool = True
    """In eval mode, lay the input out channels-last (same values), so that the convolutions run in
    oneDNN's channels-last kernels: on CPU 1.2-1.3x faster than NCHW with the same weights
    (docs/benchmarks.md, "Speed goals"). ``False``: NCHW, as in training."""

    def fuse(self, channels_last: bool = True) -> EA2DModel:
        """Return an eval-mode copy for fast inference: BatchNorms folded into the convolutions.

        Every BatchNorm is merged into the convolution before it (torch's ``fuse_conv_bn_eval``),
        which saves one pass over every feature map, and by default the weights are put in
        channels-last memory layout. The copy computes the same eval outputs to float rounding,
        exports and compiles like the original, and cannot be trained (it has no BatchNorms
        left, and its parameters do not require gradients, so a copy made under
        ``torch.inference_mode`` also runs outside it); this model is left as it is. Fuse again
        after changing the weights. On CPU this is the fastest variant measured
        (docs/benchmarks.md, "Inference fast path"). ``EA2D``'s validation, test and predict
        steps run such a copy (``EA2D(inference_path="fused")``, the default).

        Args:
            channels_last: Convert the copy's weights to ``torch.channels_last`` (as
                ``.to(memory_format=torch.channels_last)``), so that its convolutions run channels-last.

        Example:
            >>> import torch
            >>> model = EA2DModel(backbone="resnet18", pre_trained=False).eval()
            >>> fused = model.fuse()
            >>> images = torch.randn(1, 3, 64, 64)
            >>> torch.allclose(fused(images).anomaly_map, model(images).anomaly_map, atol=1e-5)
            True
        """
        fused = copy.deepcopy(self).eval()
        fold_batchnorms_(fused)
        fused.requires_grad_(False)
        fused.is_fused = True
        return fused.to(memory_format=torch.channels_last) if channels_last else fused


__all__ = [
    "SUPPORTED_BACKBONES",
    "EA2DFeatures",
    "EA2DModel",
    "ViewBranch",
    "check_input_size",
    "check_trainable_batch",
]
