"""anomalib datamodule of the synthetic brain-MRI demo set (generated on first use, cached on disk).

:class:`SyntheticBrainMRI` is anomalib's :class:`~anomalib.data.Folder` datamodule pointed at a set that
:func:`~anomalib_ea2d.data.generators.synthetic_brain.generate_synthetic_brain` writes under ``root``; generation
runs in ``prepare_data`` (and, if needed, in ``setup``) and is skipped while the cached set matches
the parameters. Lesions are synthetic: see :mod:`anomalib_ea2d.data.generators.synthetic_brain` and ``docs/data.md``.

From the command line::

    anomalib train --model EA2D --data anomalib_ea2d.data.SyntheticBrainMRI --data.image_size 128
"""

from __future__ import annotations

from pathlib import Path

from anomalib.data import Folder
from anomalib.data.utils import TestSplitMode, ValSplitMode
from anomalib.utils.path import resolve_dataset_root
from torchvision.transforms.v2 import Transform

from anomalib_ea2d.data.datamodules.calibration import CalibrationSplitMixin
from anomalib_ea2d.data.generators.synthetic_brain import (
    SUBJECT_PATTERN,
    SyntheticBrainParams,
    generate_synthetic_brain,
    is_up_to_date,
)
from anomalib_ea2d.data.layout import LESION_MASK_DIR, TEST_LESION_DIR, TEST_NORMAL_DIR, TRAIN_DIR


class SyntheticBrainMRI(CalibrationSplitMixin, Folder):
    """Synthetic axial T1 brain-MRI slices (MNI152 anatomy, simulated subjects) with synthetic lesions.

    Normal training slices, normal test slices and test slices with one to three synthetic lesions
    plus their masks, so image AUROC and pixel AUROC/PRO are measurable. The lesions are a software
    test signal, not a model of disease: scores on this set do not predict scores on real pathology.

    Args:
        root: Folder of the generated set; default: anomalib's dataset cache
            (``~/.cache/anomalib/datasets/SyntheticBrainMRI``). Must be empty, new, or a previous set.
        image_size: Side of the square slices in pixels.
        num_train: Normal training slices.
        num_test_normal: Normal test slices.
        num_test_abnormal: Test slices with lesions.
        slices_per_subject: Slices taken from each simulated subject.
        lesions_per_image: Inclusive range of lesions per abnormal slice.
        lesion_radius_mm: Range of lesion semi-axes in millimetres.
        slice_range: Axial range of the slices as fractions of the brain's height.
        generation_seed: Seed of the generator (same seed, same files).
        train_batch_size: Training batch size.
        eval_batch_size: Validation/test batch size.
        num_workers: Data-loading workers.
        train_augmentations: Augmentations of training images.
        val_augmentations: Augmentations of validation images.
        test_augmentations: Augmentations of test images.
        augmentations: Augmentations of every subset without its own.
        val_split_mode: How to get the validation set. Default ``from_test``: a label-balanced half
            of the generated test slices, disjoint from the images that are then tested, so that
            score normalisation and the F1/PRO thresholds are never fitted on the test images.
        val_split_ratio: Fraction used by the ``from_*`` validation split modes.
        seed: Seed of anomalib's random subset splits (not of the generator); fixed by default so
            every run validates and tests on the same images.
        calibration_split_ratio: Share of the normal training images held out of training for
            calibration (:class:`~anomalib_ea2d.data.datamodules.calibration.CalibrationSplitMixin`);
            0 (default): none.
        calibration_group_pattern: The subject in each file name; the calibration split holds out
            whole subjects (default: the generator's ``_s<subject>_``); ``None``: single slices.

    Example:
        >>> import tempfile
        >>> from anomalib_ea2d.data import SyntheticBrainMRI
        >>> datamodule = SyntheticBrainMRI(
        ...     root=tempfile.mkdtemp(), image_size=64, num_train=4, num_test_normal=2, num_test_abnormal=2,
        ...     train_batch_size=2, eval_batch_size=2, num_workers=0,
        ... )
        >>> datamodule.prepare_data()
        >>> datamodule.setup()
        >>> batch = next(iter(datamodule.test_dataloader()))
        >>> tuple(batch.image.shape), tuple(batch.gt_mask.shape)
        ((2, 3, 64, 64), (2, 64, 64))
    """

    def __init__(
        self,
        root: str | Path | None = None,
        image_size: int = 256,
        num_train: int = 200,
        num_test_normal: int = 100,
        num_test_abnormal: int = 100,
        slices_per_subject: int = 5,
        lesions_per_image: tuple[int, int] = (1, 3),
        lesion_radius_mm: tuple[float, float] = (4.0, 11.0),
        slice_range: tuple[float, float] = (0.45, 0.75),
        generation_seed: int = 0,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        val_split_mode: ValSplitMode | str = ValSplitMode.FROM_TEST,
        val_split_ratio: float = 0.5,
        seed: int | None = 0,
        calibration_split_ratio: float = 0.0,
        calibration_group_pattern: str | None = SUBJECT_PATTERN,
    ) -> None:
        self._init_calibration_split(calibration_split_ratio, calibration_group_pattern)
        self.params = SyntheticBrainParams(
            seed=generation_seed,
            image_size=image_size,
            num_train=num_train,
            num_test_normal=num_test_normal,
            num_test_abnormal=num_test_abnormal,
            slices_per_subject=slices_per_subject,
            lesions_per_image=lesions_per_image,
            lesion_radius_mm=lesion_radius_mm,
            slice_range=slice_range,
        )
        super().__init__(
            name="SyntheticBrainMRI",
            root=resolve_dataset_root(root, "SyntheticBrainMRI"),
            normal_dir=TRAIN_DIR,
            abnormal_dir=TEST_LESION_DIR,
            normal_test_dir=TEST_NORMAL_DIR,
            mask_dir=LESION_MASK_DIR,
            extensions=(".png",),
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=TestSplitMode.FROM_DIR,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )

    def prepare_data(self) -> None:
        """Generate the set under ``root`` unless an identical one is cached there."""
        generate_synthetic_brain(self.root, self.params)

    def _setup(self, _stage: str | None = None) -> None:
        # ``setup`` may be called without ``prepare_data`` (outside a Trainer): make sure the set exists.
        if not is_up_to_date(self.root, self.params):
            self.prepare_data()
        super()._setup(_stage)
