"""Splits by volume: every slice of a volume lands on the same side of a split.

Example:
    >>> volume_partition(["a", "b", "c", "d"], [0, 0, 1, 1], 0.5, seed=0, label_aware=True)[1].__len__()
    2
"""

from __future__ import annotations

import numpy as np

from anomalib_ea2d.data.utils.split import partition_groups as volume_partition
from anomalib_ea2d.data.volumes.dataset import VolumeSliceDataset


def split_by_volume(
    dataset: VolumeSliceDataset,
    ratio: float,
    seed: int | None,
    label_aware: bool = False,
) -> tuple[VolumeSliceDataset, VolumeSliceDataset]:
    """Split ``dataset`` into ``(rest, part)`` by whole volumes, ``part`` holding about ``ratio`` of them."""
    volumes = dataset.volumes
    labels = [dataset.records[v].label_index for v in volumes]
    _, taken = volume_partition(volumes, labels, ratio, seed, label_aware)
    in_part = dataset.samples["volume"].isin(taken).to_numpy()
    return dataset.subsample(np.flatnonzero(~in_part).tolist()), dataset.subsample(np.flatnonzero(in_part).tolist())


__all__ = ["split_by_volume", "volume_partition"]
