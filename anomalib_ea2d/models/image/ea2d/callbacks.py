"""Contrastive-augmentation callback: how EA2D makes its second view while training.

EA2D trains two decoders, one for the image and one for a transformed copy of it, and ties the two
encodings together with a transformation-consistency (contrastive) term. Without this callback the
second view is the paper's: the image rotated by 180 degrees, with the model's contrastive weight.
With it, training can draw the second view from other rotations and flips, jitter its intensity
(useful for scanners with varying contrast) and warm the contrastive weight up from zero.

Inference always uses the fixed 180-degree view, whatever the callback did in training.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_ea2d.models.image.ea2d.anomaly_map import rotate180

logger = logging.getLogger(__name__)

VIEW_TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "rot180": rotate180,
    "rot90": partial(torch.rot90, k=1, dims=(-2, -1)),
    "rot270": partial(torch.rot90, k=3, dims=(-2, -1)),
    "hflip": partial(torch.flip, dims=(-1,)),
    "vflip": partial(torch.flip, dims=(-2,)),
}
"""Second-view transformations by name; ``rot90``/``rot270`` need square inputs."""


class ContrastiveAugmentation(Callback):
    """Make EA2D's second training view and schedule its contrastive weight.

    The defaults reproduce the paper exactly (180-degree rotation, the model's contrastive weight,
    no jitter, no warm-up), so adding the callback with defaults changes nothing.

    Args:
        transforms: Names of second-view transformations (see ``VIEW_TRANSFORMS``); one is drawn at
            random for each training batch.
        intensity_jitter: Strength ``j`` of a per-image random contrast factor in ``[1 - j, 1 + j]``
            and offset in ``[-j, j]`` (in normalised units) applied to the second view only.
        contrastive_weight: Weight of the contrastive term; ``None`` keeps the model's
            ``contrastive_weight``; ``0`` switches the term off.
        warmup_steps: Ramp the contrastive weight linearly from 0 over this many steps.
        seed: Seed of the callback's random draws (``None``: from torch's global generator).

    Example:
        >>> from anomalib_ea2d import ContrastiveAugmentation
        >>> callback = ContrastiveAugmentation(transforms=["rot180", "hflip"], warmup_steps=100)
        >>> callback.weight_at(step=50, target=0.5)
        0.25
    """

    def __init__(
        self,
        transforms: Sequence[str] = ("rot180",),
        intensity_jitter: float = 0.0,
        contrastive_weight: float | None = None,
        warmup_steps: int = 0,
        seed: int | None = None,
    ) -> None:
        unknown = [name for name in transforms if name not in VIEW_TRANSFORMS]
        if not transforms or unknown:
            msg = (
                f"ContrastiveAugmentation transforms must be a non-empty list of {sorted(VIEW_TRANSFORMS)}, "
                f"got {list(transforms)}."
            )
            raise ValueError(msg)
        if intensity_jitter < 0 or intensity_jitter >= 1:
            msg = f"ContrastiveAugmentation intensity_jitter must be in [0, 1), got {intensity_jitter}."
            raise ValueError(msg)
        if contrastive_weight is not None and contrastive_weight < 0:
            msg = (
                "ContrastiveAugmentation contrastive_weight must be >= 0 (0 turns the term off), "
                f"got {contrastive_weight}."
            )
            raise ValueError(msg)
        if warmup_steps < 0:
            msg = f"ContrastiveAugmentation warmup_steps must be >= 0, got {warmup_steps}."
            raise ValueError(msg)
        self.transforms = list(transforms)
        self.intensity_jitter = intensity_jitter
        self.contrastive_weight = contrastive_weight
        self.warmup_steps = warmup_steps
        self.generator = torch.Generator()
        self.generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**31 - 1, ()).item()))
        self._target_weight: float | None = None

    def weight_at(self, step: int, target: float) -> float:
        """Contrastive weight at optimizer step ``step`` (0-based) for a final weight ``target``."""
        if self.warmup_steps == 0:
            return target
        return target * min(1.0, step / self.warmup_steps)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Second view of a ``[B, C, H, W]`` batch."""
        index = int(torch.randint(len(self.transforms), (), generator=self.generator))
        name = self.transforms[index]
        if name in {"rot90", "rot270"} and images.shape[-1] != images.shape[-2]:
            msg = (
                f"ContrastiveAugmentation transform {name!r} needs square images, got {tuple(images.shape[-2:])}; "
                "use rot180, hflip or vflip."
            )
            raise ValueError(msg)
        view = VIEW_TRANSFORMS[name](images)
        if self.intensity_jitter > 0:
            shape = (images.shape[0], 1, 1, 1)
            noise = torch.rand((2, *shape), generator=self.generator) * 2 - 1
            contrast = (1 + self.intensity_jitter * noise[0]).to(view)
            offset = (self.intensity_jitter * noise[1]).to(view)
            view = view * contrast + offset
        return view

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Take over the second view and the contrastive weight of the EA2D module."""
        del trainer
        if not hasattr(pl_module, "model") or not hasattr(pl_module.model, "second_view"):
            msg = (
                f"ContrastiveAugmentation works with the EA2D model only, got {type(pl_module).__name__}; "
                "remove the callback."
            )
            raise TypeError(msg)
        pl_module.model.second_view = self
        self._target_weight = (
            self.contrastive_weight if self.contrastive_weight is not None else pl_module.loss.contrastive_weight
        )

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:  # noqa: ANN401
        """Set this step's contrastive weight."""
        del batch, batch_idx
        assert self._target_weight is not None
        weight = self.weight_at(trainer.global_step, self._target_weight)
        pl_module.loss.contrastive_weight = weight
        if self.warmup_steps:
            pl_module.log("contrastive_weight", weight, on_step=True, on_epoch=False)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Give the model back its fixed 180-degree view and the final contrastive weight."""
        del trainer
        pl_module.model.second_view = rotate180
        if self._target_weight is not None:
            pl_module.loss.contrastive_weight = self._target_weight

    def state_dict(self) -> dict[str, Any]:
        """Random state, so that a resumed run draws the same views."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the random state saved by :meth:`state_dict`."""
        self.generator.set_state(state_dict["generator"])
