"""MedicalVolumes on the synthetic brain volumes, generated on first use (the offline volume demo).

From the command line::

    anomalib train --config configs/synthetic_brain_volumes.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anomalib.utils.path import resolve_dataset_root

from anomalib_ea2d.data.generators.synthetic_brain_volumes import (
    SyntheticVolumeParams,
    generate_synthetic_brain_volumes,
)
from anomalib_ea2d.data.layout import LESION_MASK_DIR, TEST_LESION_DIR, TEST_NORMAL_DIR, TRAIN_DIR
from anomalib_ea2d.data.volumes.datamodule import MedicalVolumes


class SyntheticBrainVolumes(MedicalVolumes):
    """Synthetic T1 brain volumes (NIfTI) with synthetic 3-D lesions, read by :class:`MedicalVolumes`.

    Args:
        root: Folder of the generated set (default: anomalib's dataset cache).
        volume_size: In-plane voxels over the 210 mm field of view (isotropic voxels).
        num_train: Normal training volumes.
        num_test_normal: Normal test volumes.
        num_test_abnormal: Test volumes with lesions.
        lesions_per_volume: Inclusive range of lesions per abnormal volume.
        lesion_radius_mm: Range of lesion semi-axes in millimetres.
        generation_seed: Seed of the generator.
        seed: Seed of the volume splits (calibration, validation/test halves), not of the generator;
            fixed by default, so every run (any ``seed_everything``) tests the same volumes.
        **kwargs: Further :class:`MedicalVolumes` arguments (axis, slice_range, batch sizes, ...).

    Example:
        >>> import tempfile
        >>> datamodule = SyntheticBrainVolumes(root=tempfile.mkdtemp(), volume_size=32, num_train=1,
        ...     num_test_normal=2, num_test_abnormal=2, num_workers=0)
        >>> datamodule.setup()
        >>> len(datamodule.test_data.volumes), len(datamodule.val_data.volumes)
        (2, 2)
    """

    def __init__(
        self,
        root: str | Path | None = None,
        volume_size: int = 96,
        num_train: int = 20,
        num_test_normal: int = 10,
        num_test_abnormal: int = 10,
        lesions_per_volume: tuple[int, int] = (1, 3),
        lesion_radius_mm: tuple[float, float] = (5.0, 12.0),
        generation_seed: int = 0,
        seed: int | None = 0,
        **kwargs: Any,  # noqa: ANN401
    ) -> None:
        self.params = SyntheticVolumeParams(
            seed=generation_seed,
            volume_size=volume_size,
            num_train=num_train,
            num_test_normal=num_test_normal,
            num_test_abnormal=num_test_abnormal,
            lesions_per_volume=lesions_per_volume,
            lesion_radius_mm=lesion_radius_mm,
        )
        super().__init__(
            name="SyntheticBrainVolumes",
            root=resolve_dataset_root(root, "SyntheticBrainVolumes"),
            normal_dir=TRAIN_DIR,
            abnormal_dir=TEST_LESION_DIR,
            normal_test_dir=TEST_NORMAL_DIR,
            mask_dir=LESION_MASK_DIR,
            seed=seed,
            **kwargs,
        )

    def prepare_data(self) -> None:
        """Generate the volumes under ``root`` unless an identical set is cached there."""
        generate_synthetic_brain_volumes(self.root, self.params)

    def _setup(self, _stage: str | None = None) -> None:
        self.prepare_data()  # cheap when cached; setup may run without prepare_data
        super()._setup(_stage)


__all__ = ["SyntheticBrainVolumes"]
