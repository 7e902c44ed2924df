"""A held-out normal *calibration* split for anomalib datamodules.

Statistics that describe a trained model's behaviour on normal images (per-position map
statistics, score scales) are biased when they are fitted on the very images the model was trained
on: a model reconstructs its training images better than unseen normal ones, so those images look
more normal than anything it will be shown. :class:`CalibrationSplitMixin` holds a fraction of the
normal training images out of training (and out of any pretraining phase that reads the training
loader) and serves them through :meth:`~CalibrationSplitMixin.calibration_dataloader`, which
callbacks that fit such statistics read when the datamodule has it (e.g. EA2D's
``standardize_maps``); with ``calibration_split_ratio=0`` (the default) nothing changes.

The split is made once, after anomalib's test and validation splits, with the datamodule's
``seed``; calibration images get the validation augmentations (plus the model's resize). With
``calibration_group_pattern`` (a regular expression whose first group is the subject in each file
name) whole subjects are held out, so no held-out slice has a sibling in training
(:func:`~anomalib_ea2d.data.utils.split.split_by_group`).

From the command line (one line)::

    anomalib train --model EA2D --model.standardize_maps true --data anomalib_ea2d.data.SyntheticBrainMRI
        --data.calibration_split_ratio 0.2
"""

from __future__ import annotations

import logging
from typing import Any

from anomalib.data import AnomalibDataset
from anomalib.data.utils import random_split
from anomalib.utils.attrs import get_nested_attr
from torch.utils.data import DataLoader

from anomalib_ea2d.data.utils.split import check_group_pattern, file_groups, split_by_group

logger = logging.getLogger(__name__)


def check_calibration_ratio(ratio: float) -> float:
    """``ratio`` if it is a share in ``[0, 1)``, else a clear error."""
    if not 0.0 <= float(ratio) < 1.0:
        msg = (
            f"calibration_split_ratio must be in [0, 1) (the share of normal training images held out for "
            f"calibration), got {ratio!r}; use e.g. 0.2, or 0 for no calibration split."
        )
        raise ValueError(msg)
    return float(ratio)


class CalibrationSplitMixin:
    """Hold ``calibration_split_ratio`` of the normal training images out of training for calibration.

    Mix it in *before* the anomalib datamodule class and call :meth:`_init_calibration_split` in
    ``__init__``; datamodules that override ``_create_val_split`` without calling ``super()`` call
    :meth:`_create_calibration_split` at its end. Override :meth:`_split_calibration` to split by
    group (e.g. whole volumes).

    Example:
        >>> import tempfile
        >>> from anomalib_ea2d.data import SyntheticBrainMRI
        >>> datamodule = SyntheticBrainMRI(
        ...     root=tempfile.mkdtemp(), image_size=32, num_train=10, num_test_normal=2, num_test_abnormal=2,
        ...     slices_per_subject=2, num_workers=0, calibration_split_ratio=0.2,
        ... )
        >>> datamodule.setup()
        >>> len(datamodule.train_data), len(datamodule.calibration_data)
        (8, 2)
    """

    calibration_split_ratio: float = 0.0
    calibration_group_pattern: str | None = None
    calibration_data: AnomalibDataset | None = None

    def _init_calibration_split(self, ratio: float, group_pattern: str | None = None) -> None:
        self.calibration_split_ratio = check_calibration_ratio(ratio)
        self.calibration_group_pattern = check_group_pattern(group_pattern)
        self.calibration_data = None

    def _split_calibration(self, dataset: AnomalibDataset) -> tuple[AnomalibDataset, AnomalibDataset]:
        """``(kept for training, held out for calibration)``: whole groups, or a random split of the images."""
        seed = getattr(self, "seed", None)
        if self.calibration_group_pattern is None:
            kept, held_out = random_split(dataset, self.calibration_split_ratio, seed=seed)
            return kept, held_out
        return split_by_group(dataset, self.calibration_group_pattern, self.calibration_split_ratio, seed)

    def _create_calibration_split(self) -> None:
        """Move ``calibration_split_ratio`` of the training images into ``calibration_data``."""
        self.calibration_data = None
        train = getattr(self, "train_data", None)
        if self.calibration_split_ratio == 0 or train is None or len(train) == 0:
            return
        kept, held_out = self._split_calibration(train)
        if len(kept) == 0 or len(held_out) == 0:
            msg = (
                f"calibration_split_ratio={self.calibration_split_ratio} leaves "
                f"{len(kept)} training and {len(held_out)} calibration images out of {len(train)}; "
                "use more normal training images or a ratio that keeps some on both sides."
            )
            raise ValueError(msg)
        self.train_data, self.calibration_data = kept, held_out
        logger.info("Calibration split: %s held out of training.", self._describe_calibration(train, held_out))

    def _describe_calibration(self, train: AnomalibDataset, held_out: AnomalibDataset) -> str:
        """What was held out, for the log line."""
        images = f"{len(held_out)} of {len(train)} normal training images"
        pattern = self.calibration_group_pattern
        if pattern is None:
            return images
        taken, total = (len(set(file_groups(list(d.samples["image_path"]), pattern))) for d in (held_out, train))
        return f"{taken} of {total} subjects (calibration_group_pattern '{pattern}'), {images}"

    def _create_val_split(self) -> None:
        super()._create_val_split()  # type: ignore[misc]
        self._create_calibration_split()

    def _update_augmentations(self) -> None:
        super()._update_augmentations()  # type: ignore[misc]
        if self.calibration_data is None:
            return
        augmentations = getattr(self, "val_augmentations", None)
        model_transform = get_nested_attr(self, "trainer.model.pre_processor.transform", None)
        if model_transform:
            self._update_subset_augmentations(self.calibration_data, augmentations, model_transform)  # type: ignore[attr-defined]
        else:
            self.calibration_data.augmentations = augmentations

    def calibration_dataloader(self) -> DataLoader | None:
        """The held-out normal images in a fixed order, or ``None`` without a calibration split."""
        if self.calibration_data is None:
            return None
        owner: Any = self
        return DataLoader(
            dataset=self.calibration_data,
            shuffle=False,
            batch_size=owner.eval_batch_size,
            num_workers=owner.num_workers,
            collate_fn=owner.external_collate_fn or self.calibration_data.collate_fn,
        )


__all__ = ["CalibrationSplitMixin", "check_calibration_ratio"]
