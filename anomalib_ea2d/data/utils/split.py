r"""Splits that keep groups of images together: every image of a subject (or volume) lands on one side.

Slices of one subject look more alike than slices of two subjects, so a random split by *image*
leaves siblings of every held-out slice in training. :func:`split_by_group` splits an anomalib
dataset by the groups :func:`file_groups` reads from its file names with a regular expression
(e.g. ``r"_s(\d+)_"`` for ``train_s012_z040_2.png``); :func:`partition_groups` is the seeded
partition of group names both it and the volume splits use.

Example:
    >>> partition_groups(["a", "b", "c", "d"], [0, 0, 1, 1], 0.5, seed=0, label_aware=True)[1].__len__()
    2
    >>> file_groups(["/x/train_s000_z1.png", "/x/train_s007_z3.png"], r"_s(\d+)_")
    ['000', '007']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from anomalib.data import AnomalibDataset


def partition_groups(
    groups: Sequence[str],
    labels: Sequence[int],
    ratio: float,
    seed: int | None,
    label_aware: bool,
) -> tuple[list[str], list[str]]:
    """Split distinct group names into ``(kept, taken)`` with about ``ratio`` of them taken.

    With ``label_aware`` the ratio is applied to each label's groups separately. A set of two or
    more groups keeps at least one on each side. ``seed=None`` draws the partition from torch's global
    generator, as anomalib's own random splits do, so ``seed_everything`` (``--seed_everything``)
    makes it reproducible.
    """
    if seed is None:
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[str]] = {}
    for group, label in zip(groups, labels, strict=True):
        by_label.setdefault(int(label) if label_aware else 0, []).append(group)
    taken: list[str] = []
    for label in sorted(by_label):
        members = sorted(by_label[label])
        count = round(ratio * len(members))
        if len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        order = rng.permutation(len(members))
        taken += [members[i] for i in order[:count]]
    chosen = set(taken)
    return [g for g in groups if g not in chosen], [g for g in groups if g in chosen]


def check_group_pattern(pattern: str | None) -> str | None:
    """``pattern`` if it is ``None`` or a valid regular expression, else a clear error."""
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except re.error as error:
        msg = (
            f"calibration_group_pattern={pattern!r} is not a valid regular expression ({error}); pass one whose "
            r"first group is the subject in the file name, e.g. '_s(\d+)_' or '^(sub-\w+)_'."
        )
        raise ValueError(msg) from None
    return pattern


def file_groups(paths: Sequence[str], pattern: str) -> list[str]:
    """The group of each file: the first group of ``pattern`` in its name (the whole match without groups).

    Raises:
        ValueError: If a file name does not match ``pattern``.
    """
    regex = re.compile(pattern)
    groups = []
    for path in paths:
        match = regex.search(Path(path).name)
        if match is None:
            msg = (
                f"The file name {Path(path).name!r} does not match calibration_group_pattern={pattern!r}; pass a "
                "pattern every training file name matches, or None to hold out single images."
            )
            raise ValueError(msg)
        groups.append(match.group(1) if regex.groups else match.group(0))
    return groups


def split_by_group(
    dataset: AnomalibDataset, pattern: str, ratio: float, seed: int | None
) -> tuple[AnomalibDataset, AnomalibDataset]:
    """Split ``dataset`` into ``(rest, part)`` by whole groups, ``part`` holding about ``ratio`` of them."""
    groups = file_groups(list(dataset.samples["image_path"]), pattern)
    names = sorted(set(groups))
    _, taken = partition_groups(names, [0] * len(names), ratio, seed, label_aware=False)
    chosen = set(taken)
    in_part = [group in chosen for group in groups]
    rest = [i for i, inside in enumerate(in_part) if not inside]
    part = [i for i, inside in enumerate(in_part) if inside]
    return dataset.subsample(rest), dataset.subsample(part)


__all__ = ["check_group_pattern", "file_groups", "partition_groups", "split_by_group"]
