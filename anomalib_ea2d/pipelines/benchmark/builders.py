"""Data, models and trainers of the benchmark studies, built the same way for every study.

The studies train on the synthetic brain-MRI set (:func:`build_datamodule`), with anomalib models
that share input size, backbone family and evaluator (:func:`build_model`), through anomalib's
:class:`~anomalib.engine.Engine` on the CPU (:func:`build_engine`), with training chatter silenced
(:func:`quiet_lightning`). No pretrained weights are downloaded: every backbone starts from random
weights (UniNet, whose teachers always ask torchvision for ImageNet weights, is built inside
:func:`random_torchvision_weights`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision
from anomalib.engine import Engine
from anomalib.models import AnomalibModule, Patchcore, ReverseDistillation, UniNet
from lightning.pytorch import Callback
from torch import nn

from anomalib_ea2d.data import SyntheticBrainMRI
from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D
from anomalib_ea2d.pipelines.benchmark.config import MODEL_NAMES, DataSpec
from anomalib_ea2d.pipelines.benchmark.metrics import shared_evaluator
from anomalib_ea2d.utils.quiet import quiet

_NOISY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "anomalib", "nncf", "anomalib_ea2d")


def build_datamodule(spec: DataSpec, output: Path, train_batch_size: int, eval_batch_size: int) -> SyntheticBrainMRI:
    """A :class:`~anomalib_ea2d.data.SyntheticBrainMRI` datamodule over the set ``spec`` describes.

    Its validation split (normalisation and thresholds) is a fixed half of the generated test
    slices; the other half is tested. The split is the same for every model and seed.

    Args:
        spec: The set.
        output: Study output folder; the set is generated under ``output/data`` unless ``spec.root`` is set.
        train_batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
    """
    return SyntheticBrainMRI(
        root=spec.root or output / "data" / spec.folder_name(),
        image_size=spec.image_size,
        num_train=spec.num_train,
        num_test_normal=spec.num_test_normal,
        num_test_abnormal=spec.num_test_abnormal,
        generation_seed=spec.generation_seed,
        train_batch_size=train_batch_size,
        eval_batch_size=eval_batch_size,
        num_workers=0,
    )


def load_test_batches(datamodule: SyntheticBrainMRI) -> list[Any]:
    """Every batch of the datamodule's test split."""
    datamodule.setup("test")
    return list(datamodule.test_dataloader())


def images_for(batches: Sequence[Any], count: int) -> torch.Tensor:
    """``count`` test images (repeated when the test set is smaller), for throughput measurements."""
    images = torch.cat([batch.image for batch in batches])
    repeats = math.ceil(count / images.shape[0])
    return images.repeat(repeats, 1, 1, 1)[:count].contiguous()


class _NoWeights:
    """Stands in for a torchvision weights enum whose ``DEFAULT`` is "no weights"."""

    DEFAULT = None


@contextlib.contextmanager
def random_torchvision_weights() -> Iterator[None]:
    """Models built inside get random weights where they ask torchvision for its default weights.

    Example:
        >>> with random_torchvision_weights():
        ...     torchvision.models.get_model_weights("resnet50").DEFAULT is None
        True
    """
    original = torchvision.models.get_model_weights
    torchvision.models.get_model_weights = lambda name: _NoWeights
    try:
        yield
    finally:
        torchvision.models.get_model_weights = original


def build_model(
    name: str,
    backbone: str,
    image_size: int,
    max_steps: int,
    ea2d_args: dict[str, Any] | None = None,
    evaluator: Any = None,  # noqa: ANN401
) -> AnomalibModule:
    """An anomalib model with the shared input size, backbone family and evaluator.

    Args:
        name: ``"ea2d"``, ``"patchcore"``, ``"reverse_distillation"`` or ``"uninet"``.
        backbone: ResNet name (random weights: nothing is downloaded); for UniNet its teacher and
            student (a ResNet-50-like width, e.g. ``"resnet50"``).
        image_size: Input size of the pre-processor (Resize + ImageNet normalisation).
        max_steps: EA2D's training length (the other models get theirs from the trainer).
        ea2d_args: Extra EA2D init args (the ablation switches).
        evaluator: The evaluator (default: :func:`~anomalib_ea2d.pipelines.benchmark.metrics.shared_evaluator`).

    Example:
        >>> build_model("patchcore", "resnet18", 64, max_steps=2).__class__.__name__
        'Patchcore'
    """
    common = {"evaluator": evaluator or shared_evaluator(), "visualizer": False}
    if name == "ea2d":
        return EA2D(
            backbone=backbone,
            pre_trained=False,
            image_size=image_size,
            max_steps=max_steps,
            **common,
            **(ea2d_args or {}),
        )
    pre_processor = AnomalibModule.configure_pre_processor((image_size, image_size))
    if name == "patchcore":
        return Patchcore(backbone=backbone, pre_trained=False, pre_processor=pre_processor, **common)
    if name == "reverse_distillation":
        return ReverseDistillation(backbone=backbone, pre_trained=False, pre_processor=pre_processor, **common)
    if name == "uninet":
        with random_torchvision_weights():
            return UniNet(student_backbone=backbone, teacher_backbone=backbone, pre_processor=pre_processor, **common)
    msg = f"Unknown benchmark model {name!r}; choose from {', '.join(MODEL_NAMES)}."
    raise ValueError(msg)


def build_engine(output: Path, name: str, max_steps: int, callbacks: list[Callback]) -> Engine:
    """A quiet CPU Engine training ``max_steps`` steps and validating once at the end (PatchCore: one epoch)."""
    kwargs: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "default_root_dir": str(output),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": callbacks,
    }
    if name != "patchcore":  # PatchCore fits its memory bank in one epoch, validated at its end
        kwargs.update(max_steps=max_steps, check_val_every_n_epoch=None, val_check_interval=max_steps)
    return Engine(**kwargs)


def randomise_eval_state(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and attention gammas, as a trained model has (attention contributes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.empty(module.num_features).uniform_(-0.1, 0.1, generator=generator))
                module.running_var.copy_(torch.empty(module.num_features).uniform_(0.5, 2.0, generator=generator))
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.1)
    return model


def quiet_lightning() -> contextlib.AbstractContextManager[None]:
    """Silence training chatter while a study runs; logger levels and warning filters are restored after.

    Example:
        >>> import logging
        >>> with quiet_lightning():
        ...     logging.getLogger("lightning").level == logging.ERROR
        True
    """
    return quiet(_NOISY_LOGGERS)


__all__ = [
    "build_datamodule",
    "build_engine",
    "build_model",
    "images_for",
    "load_test_batches",
    "quiet_lightning",
    "random_torchvision_weights",
    "randomise_eval_state",
]
