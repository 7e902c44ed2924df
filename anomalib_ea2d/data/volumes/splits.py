"""Splits by volume: every slice of a volume lands on the same side of a split.

Example:
    >>> volume_partition(["a", "b", "c", "d"], [0, 0, 1, 1], 0.5, seed=0, label_aware=True)[1].__len__()
    2
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anomalib_ea2d.data.volumes.dataset import VolumeSliceDataset


def volume_partition(
    volumes: Sequence[str],
    labels: Sequence[int],
    ratio: float,
    seed: int | None,
    label_aware: bool,
) -> tuple[list[str], list[str]]:
    """Split volume names into ``(kept, taken)`` with about ``ratio`` of them taken.

    With ``label_aware`` the ratio is applied to each label's volumes separately. A group of two or
    more volumes keeps at least one on each side.
    """
    rng = np.random.default_rng(seed)
    groups: dict[int, list[str]] = {}
    for volume, label in zip(volumes, labels, strict=True):
        groups.setdefault(int(label) if label_aware else 0, []).append(volume)
    taken: list[str] = []
    for label in sorted(groups):
        members = sorted(groups[label])
        count = round(ratio * len(members))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        order = rng.permutation(len(members))
        taken += [members[i] for i in order[:count]]
    kept = [v for v in volumes if v not in set(taken)]
    return kept, [v for v in volumes if v in set(taken)]


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
