"""Per-position standardisation of anomaly maps by the maps of normal training images.

A reconstruction model's anomaly map is not equally high everywhere on normal images: where the
anatomy has strong edges (the brain's outline, ventricles) the error is high on every image, and
the image score (the map's maximum) then measures the anatomy rather than the lesion. When the
images are roughly aligned (registered scans, a fixed field of view), each map position can be
compared with what that position looks like on normal images: ``(map - mean) / std`` with the
per-position mean and standard deviation of the maps of the normal training images, negative
values set to 0. :class:`MapStandardizer` holds those statistics as buffers (saved in the
checkpoint, constants in an exported graph) and applies them; it is fitted once after training
from a stream of maps (:meth:`MapStandardizer.update` then :meth:`MapStandardizer.finish`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

STD_FLOOR = 0.1
"""Smallest standard deviation, as a fraction of the mean standard deviation over all positions
(positions that never vary, e.g. background, would otherwise divide by ~0)."""


class MapStandardizer(nn.Module):
    """Standardise ``[B, 1, h, w]`` maps of each view by per-position statistics of normal maps.

    Args:
        num_views: Number of views with their own statistics (EA2D: 2).

    Example:
        >>> import torch
        >>> standardizer = MapStandardizer(num_views=1)
        >>> standardizer.update(torch.rand(20, 1, 4, 4))
        >>> standardizer.finish()
        >>> standardizer(torch.rand(2, 1, 4, 4), view=0).shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(self, num_views: int = 2) -> None:
        super().__init__()
        self.num_views = num_views
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("std", torch.empty(0))
        self._sums: list[torch.Tensor] | None = None

    @property
    def fitted(self) -> bool:
        """Whether statistics are present (fitted, or loaded from a checkpoint)."""
        return self.mean.numel() > 0

    def reset(self) -> None:
        """Forget the statistics and any partial sums (before fitting again)."""
        self.mean = self.mean.new_empty(0)
        self.std = self.std.new_empty(0)
        self._sums = None

    @torch.no_grad()
    def update(self, view_maps: torch.Tensor) -> None:
        """Add a batch of normal maps, ``[B, num_views, h, w]`` (float64 sums, any batch split)."""
        if view_maps.dim() != 4 or view_maps.shape[1] != self.num_views:
            msg = f"MapStandardizer.update expects [B, {self.num_views}, h, w] maps, got {tuple(view_maps.shape)}."
            raise ValueError(msg)
        maps = view_maps.detach().double()
        batch = (maps.new_tensor(maps.shape[0]), maps.sum(0), (maps * maps).sum(0))
        if self._sums is None:
            self._sums = list(batch)
        else:
            if self._sums[1].shape != batch[1].shape:
                msg = "MapStandardizer.update got maps of another size than before; fit it on one image size."
                raise ValueError(msg)
            self._sums = [total + part for total, part in zip(self._sums, batch, strict=True)]

    def finish(self) -> None:
        """Turn the accumulated sums into the per-position mean and (floored) standard deviation."""
        if self._sums is None or float(self._sums[0]) < 2:
            count = 0 if self._sums is None else int(self._sums[0])
            msg = (
                f"MapStandardizer needs the maps of at least 2 normal images, got {count}; give it more training "
                "images, or a larger calibration_split_ratio where the datamodule holds images out for calibration."
            )
            raise ValueError(msg)
        count, total, squares = self._sums
        mean = total / count
        variance = ((squares - count * mean * mean) / (count - 1)).clamp(min=0.0)
        std = variance.sqrt()
        std = std.clamp(min=float(std.mean()) * STD_FLOOR + torch.finfo(torch.float32).tiny)
        dtype = self.mean.dtype if self.mean.is_floating_point() else torch.float32
        self.mean = mean.unsqueeze(1).to(dtype)  # [num_views, 1, h, w]
        self.std = std.unsqueeze(1).to(dtype)
        self._sums = None

    def forward(self, view_map: torch.Tensor, view: int) -> torch.Tensor:
        """``max(0, (map - mean) / std)`` of ``view``'s ``[B, 1, h, w]`` map."""
        if not self.fitted:
            msg = (
                "standardize_maps is on but its statistics were never fitted; train the model (they are fitted "
                "from the normal training images before validation) or load a checkpoint trained with it."
            )
            raise RuntimeError(msg)
        if view_map.shape[-2:] != self.mean.shape[-2:]:
            msg = (
                f"Anomaly map of size {tuple(view_map.shape[-2:])} but the map statistics were fitted at "
                f"{tuple(self.mean.shape[-2:])}; use the image size the model was trained with."
            )
            raise ValueError(msg)
        mean = self.mean[view].to(view_map.dtype)
        std = self.std[view].to(view_map.dtype)
        return torch.relu((view_map - mean) / std)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        # The statistics' size depends on the image size: take the checkpoint's shape.
        for name in ("mean", "std"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


__all__ = ["STD_FLOOR", "MapStandardizer"]
