"""EA2D's map statistics recomputed by hand from a loader, to compare with what ``FitMapStatistics`` fitted."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule

from anomalib_ea2d.models.image.ea2d.components.standardization import MapStandardizer


def map_mean_by_hand(pl_module: LightningModule, loader: Any) -> torch.Tensor:
    """Per-position mean of the module's view maps over the images of ``loader``, fitted from scratch."""
    standardizer = MapStandardizer(num_views=2)
    with torch.no_grad():
        for batch in loader:
            standardizer.update(pl_module.model.view_maps(pl_module.pre_processor(batch.image)))
    standardizer.finish()
    return standardizer.mean
