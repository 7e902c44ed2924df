r"""anomalib datamodule of medical volumes: NIfTI files and DICOM series, sliced in the patient's frame.

:class:`MedicalVolumes` takes anomalib ``Folder``'s arguments, but every entry of the folders is a
volume: a ``.nii``/``.nii.gz`` file or a folder holding one DICOM series. At setup each volume
(and its mask) is read once and checked (:mod:`~anomalib_ea2d.data.volumes.records`); slices are
then read one at a time. Splits (test from train, validation from test or train) move whole
volumes, with ``seed``; the predict stage reads only the volumes to predict and splits nothing.
When a trainer runs it, the datamodule attaches
:class:`~anomalib_ea2d.callbacks.volume_results.VolumeResults`, which reports ``volume_AUROC`` and
writes ``volume_scores.csv`` and one ``<volume>_anomaly_map.nii.gz`` per volume, named after the
volume (``<name>_<n>``, logged, only where two volumes share a name).

From the command line::

    anomalib train --model EA2D --data anomalib_ea2d.data.MedicalVolumes --data.name brains \
        --data.root datasets/brains --data.normal_dir train/good --data.abnormal_dir test/lesion \
        --data.normal_test_dir test/good --data.mask_dir ground_truth/lesion
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from anomalib import TaskType
from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.transforms.utils import extract_transforms_by_type
from anomalib.data.utils import TestSplitMode, ValSplitMode
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import Resize, Transform

from anomalib_ea2d.callbacks.volume_results import VolumeResults, VolumeScore
from anomalib_ea2d.data.datamodules.calibration import CalibrationSplitMixin
from anomalib_ea2d.data.volumes.dataset import VolumeSliceDataset
from anomalib_ea2d.data.volumes.errors import VolumeReadError
from anomalib_ea2d.data.volumes.orientation import Axis
from anomalib_ea2d.data.volumes.records import (
    SlicingOptions,
    VolumeRecord,
    find_volumes,
    index_masks,
    inspect_volume,
    mask_of,
    output_names,
    predict_volumes,
    volume_name,
)
from anomalib_ea2d.data.volumes.splits import split_by_volume

logger = logging.getLogger(__name__)

OnBadVolume = Literal["error", "skip"]
PathArg = str | Path | Sequence[str | Path] | None


def _paths(root: Path | None, value: PathArg) -> list[Path]:
    if value is None:
        return []
    values = [value] if isinstance(value, str | Path) else list(value)
    return [(root / v) if root is not None and not Path(v).is_absolute() else Path(v) for v in values]


class MedicalVolumes(CalibrationSplitMixin, AnomalibDataModule):
    """anomalib ``Folder``-style datamodule whose entries are NIfTI volumes and DICOM series.

    Args:
        name: Name of the dataset (logging, results folder).
        normal_dir: Folder(s) of normal training volumes.
        root: Folder the other folders are relative to.
        abnormal_dir: Folder(s) of abnormal test volumes.
        normal_test_dir: Folder(s) of normal test volumes.
        mask_dir: Folder(s) of lesion masks of the abnormal volumes: same volume names, same grid.
        normal_split_ratio: Kept for ``Folder`` compatibility; ``test_split_ratio`` sets the share of
            normal training volumes moved to the test set when there is no ``normal_test_dir``.
        train_batch_size: Training batch size (slices).
        eval_batch_size: Validation/test batch size (slices).
        num_workers: Data-loading workers.
        train_augmentations: Augmentations of training slices.
        val_augmentations: Augmentations of validation slices.
        test_augmentations: Augmentations of test slices.
        augmentations: Augmentations of every subset without its own.
        test_split_mode: ``from_dir`` or ``none`` (``synthetic`` needs image files, not volumes).
        test_split_ratio: Share of normal training volumes used as normal test volumes when no
            ``normal_test_dir`` is given.
        val_split_mode: ``from_test`` (default, label-aware), ``from_train``, ``same_as_test`` or ``none``.
        val_split_ratio: Share of volumes moved to the validation set.
        seed: Seed of the volume splits (``None``: drawn from torch's generator, so ``seed_everything`` fixes them).
        axis: ``axial``, ``coronal`` or ``sagittal``, in the patient's frame (from the affine).
        slice_range: Optional ``(low, high)`` fractions of each volume's foreground extent to keep.
        min_foreground: Least foreground share of a slice for it to be used.
        foreground_threshold: Voxels above it are foreground (default: the volume minimum, or the CT
            window's lower edge).
        window: CT window ``(level, width)`` in HU; default ``None``: per-volume percentile scaling.
        percentiles: Foreground percentiles mapped to 0 and 1 (MRI scaling).
        predict_dir: Folder(s) of unlabelled volumes for ``predict``, or volumes themselves (a NIfTI
            file, a DICOM series folder); default: the volumes of the test folders. Predicting reads
            only these and makes no split.
        on_bad_volume: ``"error"``: stop at setup listing every unusable volume; ``"skip"``: leave
            them out with a warning listing them.
        volume_score: How a volume's score is made from its slice scores: ``"max"`` or ``"top_k_mean"``.
        top_k: Number of highest slice scores averaged by ``"top_k_mean"``.
        write_maps: Write ``<volume>_anomaly_map.nii.gz`` for every tested/predicted volume.
        calibration_split_ratio: Share of the normal training volumes (whole volumes) held out of training for
            calibration (:class:`~anomalib_ea2d.data.datamodules.calibration.CalibrationSplitMixin`);
            0 (default): none.

    Example:
        >>> import tempfile, numpy as np, nibabel as nib
        >>> root = Path(tempfile.mkdtemp())
        >>> for folder, count in (("train", 2), ("test", 2)):
        ...     (root / folder).mkdir()
        ...     for i in range(count):
        ...         data = np.zeros((16, 16, 8), np.float32); data[4:12, 4:12, 2:6] = 50 + i
        ...         nib.save(nib.Nifti1Image(data, np.eye(4)), root / folder / f"{folder}{i}.nii.gz")
        >>> datamodule = MedicalVolumes(name="demo", root=root, normal_dir="train", abnormal_dir="test",
        ...                             num_workers=0, val_split_mode="none")
        >>> datamodule.setup()
        >>> len(datamodule.train_data.volumes), len(datamodule.test_data.volumes)  # one normal volume moved to test
        (1, 3)
        >>> tuple(datamodule.train_data[0].image.shape)  # a 3-channel slice, 4 slices per volume
        (3, 16, 16)
    """

    def __init__(
        self,
        name: str,
        normal_dir: str | Path | Sequence[str | Path],
        root: str | Path | None = None,
        abnormal_dir: PathArg = None,
        normal_test_dir: PathArg = None,
        mask_dir: PathArg = None,
        normal_split_ratio: float = 0.2,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
        val_split_mode: ValSplitMode | str = ValSplitMode.FROM_TEST,
        val_split_ratio: float = 0.5,
        seed: int | None = None,
        axis: Axis = "axial",
        slice_range: tuple[float, float] | None = None,
        min_foreground: float = 0.05,
        foreground_threshold: float | None = None,
        window: tuple[float, float] | None = None,
        percentiles: tuple[float, float] = (0.5, 99.5),
        predict_dir: PathArg = None,
        on_bad_volume: OnBadVolume = "error",
        volume_score: VolumeScore = "max",
        top_k: int = 3,
        write_maps: bool = True,
        calibration_split_ratio: float = 0.0,
    ) -> None:
        self._init_calibration_split(calibration_split_ratio)
        test_split_mode = TestSplitMode(test_split_mode)
        val_split_mode = ValSplitMode(val_split_mode)
        for mode in (test_split_mode, val_split_mode):
            if mode.value == "synthetic":
                msg = "Synthetic anomalies need image files; use split mode 'from_dir'/'from_test' with MedicalVolumes."
                raise ValueError(msg)
        if on_bad_volume not in {"error", "skip"}:
            msg = f"on_bad_volume must be 'error' or 'skip', got {on_bad_volume!r}."
            raise ValueError(msg)
        super().__init__(
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self._name = name
        self.root = Path(root) if root is not None else None
        self.normal_dir, self.abnormal_dir = normal_dir, abnormal_dir
        self.normal_test_dir, self.mask_dir, self.predict_dir = normal_test_dir, mask_dir, predict_dir
        self.normal_split_ratio = normal_split_ratio
        self.options = SlicingOptions(
            axis=axis,
            slice_range=tuple(slice_range) if slice_range is not None else None,
            min_foreground=min_foreground,
            foreground_threshold=foreground_threshold,
            window=tuple(window) if window is not None else None,
            percentiles=tuple(percentiles),
        )
        self.on_bad_volume = on_bad_volume
        self.results = VolumeResults(volume_score=volume_score, top_k=top_k, write_maps=write_maps)
        self.volume_records: dict[str, VolumeRecord] = {}
        self.predict_data: VolumeSliceDataset | None = None
        self._task = TaskType.CLASSIFICATION
        self._reported_renames: set[tuple[str, str]] = set()

    @property
    def name(self) -> str:
        """Name of the dataset."""
        return self._name

    def _inspect(self, jobs: list[tuple[Path, int, Path | None]]) -> dict[str, VolumeRecord]:
        """Inspect every volume (in threads); raise listing all unusable ones, or skip them with a warning."""

        def run(job: tuple[Path, int, Path | None]) -> VolumeRecord | str:
            path, label, mask = job
            try:
                return inspect_volume(path, label, self.options, mask)
            except VolumeReadError as error:
                return str(error)

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(run, jobs))
        problems = [outcome for outcome in outcomes if isinstance(outcome, str)]
        if problems:
            listing = "\n  ".join(problems)
            if self.on_bad_volume == "error":
                msg = (
                    f"{len(problems)} of {len(jobs)} volumes of MedicalVolumes {self.name!r} cannot be used:\n  "
                    f"{listing}\nFix or remove them, or pass on_bad_volume='skip' (--data.on_bad_volume skip) "
                    "to leave them out."
                )
                raise VolumeReadError(msg)
            logger.warning("MedicalVolumes %r: left out %d unusable volumes:\n  %s", self.name, len(problems), listing)
        return {str(o.path): o for o in outcomes if isinstance(o, VolumeRecord)}

    def _read(self, splits: Sequence[str]) -> dict[str, list[Path]]:
        """Find and inspect the volumes of ``splits`` (``train``, ``test``, ``predict``); return their paths by split.

        Only the folders of the splits asked for are read, masks only with ``test``;
        ``self.volume_records`` then holds exactly these volumes.
        """
        masks = _paths(self.root, self.mask_dir) if "test" in splits else []
        mask_index = index_masks(masks) if masks else {}
        jobs: list[tuple[Path, int, Path | None]] = []
        missing_masks: list[str] = []
        groups: dict[str, list[Path]] = {}
        for split, value, label in (
            ("train", self.normal_dir, 0),
            ("test", self.normal_test_dir, 0),
            ("test", self.abnormal_dir, 1),
            ("predict", self.predict_dir, -1),
        ):
            if split not in splits:
                continue
            for folder in _paths(self.root, value):
                for path in predict_volumes(folder) if split == "predict" else find_volumes(folder):
                    mask = None
                    if label == 1 and masks:
                        try:
                            mask = mask_of(path, mask_index, masks)
                        except VolumeReadError as error:
                            missing_masks.append(str(error))
                            continue
                    jobs.append((path, label, mask))
                    groups.setdefault(split, []).append(path)
        if missing_masks and self.on_bad_volume == "error":
            raise VolumeReadError("\n".join(missing_masks))
        for problem in missing_masks:
            logger.warning("MedicalVolumes %r: left out: %s", self.name, problem)
        self.volume_records = self._inspect(jobs)
        self._task = TaskType.SEGMENTATION if masks else TaskType.CLASSIFICATION
        return {split: [p for p in paths if str(p) in self.volume_records] for split, paths in groups.items()}

    def _dataset(self, paths: Sequence[Path], split: str) -> VolumeSliceDataset:
        keys = list(dict.fromkeys(str(p) for p in paths))
        return VolumeSliceDataset(self.volume_records, keys, split, self._task)

    def _setup(self, _stage: str | None = None) -> None:
        groups = self._read(("train", "test", "predict"))
        self.train_data = self._dataset(groups.get("train", []), "train")
        if len(self.train_data) == 0 and _stage in {None, TrainerFn.FITTING, "fit"}:
            msg = f"MedicalVolumes {self.name!r} has no usable training volume in {self.normal_dir}; add some."
            raise VolumeReadError(msg)
        self.test_data = self._dataset(groups.get("test", []), "test")
        self.predict_data = self._dataset(groups.get("predict", []), "test") if self.predict_dir is not None else None

    def _setup_predict(self) -> None:
        """Predict stage only: read ``predict_dir``'s volumes (else the test folders'); no splits are made."""
        split = "predict" if self.predict_dir is not None else "test"
        paths = self._read((split,)).get(split, [])
        if not paths:
            msg = (
                f"MedicalVolumes {self.name!r} has no volume to predict; pass predict_dir (--data.predict_dir) "
                "or test folders (abnormal_dir, normal_test_dir)."
            )
            raise VolumeReadError(msg)
        self.predict_data = self._dataset(paths, "test")

    def _create_test_split(self) -> None:
        """Normal test volumes from ``normal_test_dir``, else whole normal training volumes (``test_split_ratio``)."""
        if self.test_split_mode == TestSplitMode.NONE:
            return
        has_normal = any(self.volume_records[v].label_index == 0 for v in self.test_data.volumes)
        if not has_normal and len(self.train_data.volumes) > 1:
            logger.info("No normal test volumes; moving %.0f%% of the training volumes.", 100 * self.test_split_ratio)
            self.train_data, normal_test = split_by_volume(self.train_data, self.test_split_ratio, self.seed)
            self.test_data += normal_test

    def _create_val_split(self) -> None:
        """Validation volumes: whole volumes of the test (label-aware) or training set."""
        if self.val_split_mode == ValSplitMode.FROM_TRAIN:
            self.train_data, self.val_data = split_by_volume(self.train_data, self.val_split_ratio, self.seed)
        elif self.val_split_mode == ValSplitMode.FROM_TEST:
            self.test_data, self.val_data = split_by_volume(
                self.test_data, self.val_split_ratio, self.seed, label_aware=True
            )
        elif self.val_split_mode == ValSplitMode.SAME_AS_TEST:
            self.val_data = copy.deepcopy(self.test_data)
        self._create_calibration_split()

    def _split_calibration(self, dataset: VolumeSliceDataset) -> tuple[VolumeSliceDataset, VolumeSliceDataset]:
        """Calibration volumes: whole normal training volumes, never slices of a training volume."""
        return split_by_volume(dataset, self.calibration_split_ratio, self.seed)

    def _describe_calibration(self, train: VolumeSliceDataset, held_out: VolumeSliceDataset) -> str:
        return (
            f"{len(held_out.volumes)} of {len(train.volumes)} normal training volumes "
            f"({len(held_out)} of {len(train)} slices)"
        )

    def setup(self, stage: str | None = None) -> None:
        """Set up the subsets and attach :class:`VolumeResults` to the trainer running this datamodule.

        The predict stage, unless train/validation/test subsets were already set up, reads only the
        volumes to predict and makes no split.
        """
        built = any(hasattr(self, f"{subset}_data") for subset in ("train", "val", "test"))
        if stage == TrainerFn.PREDICTING and not built:
            self._setup_predict()
        else:
            super().setup(stage)
        self._name_outputs()
        if self.predict_data is not None:
            transform = getattr(getattr(getattr(self, "trainer", None), "model", None), "pre_processor", None)
            transform = getattr(transform, "transform", None)
            if transform is not None and extract_transforms_by_type(transform, Resize):
                self._update_subset_augmentations(self.predict_data, self.test_augmentations, transform)
            else:
                self.predict_data.augmentations = self.test_augmentations
        trainer = getattr(self, "trainer", None)
        if trainer is not None:  # a VolumeResults the user added wins over the datamodule's own
            own = next((c for c in trainer.callbacks if isinstance(c, VolumeResults)), self.results)
            own.attach(trainer)

    def _name_outputs(self) -> None:
        """Name the output files of the volumes that can be written (predicted, then tested) after their inputs.

        Where two such volumes share a name, the later one's outputs get ``<name>_<n>``; that is
        logged once, in one line (``volume_scores.csv``'s ``path`` column names each source).
        """
        written = [
            self.volume_records[key]
            for subset in (self.predict_data, getattr(self, "test_data", None))
            if subset is not None
            for key in subset.volumes
        ]
        names = output_names(list({str(record.path): record for record in written}.values()))
        renamed = []
        for key, name in names.items():
            record = self.volume_records[key]
            record.name = name
            if name != volume_name(record.path) and (key, name) not in self._reported_renames:
                self._reported_renames.add((key, name))
                renamed.append(f"{key} -> {name}")
        if renamed:
            logger.warning(
                "MedicalVolumes %r: %d volumes share their name with another one, so their outputs are renamed "
                "(volume_scores.csv's path column names each source): %s.",
                self.name,
                len(renamed),
                "; ".join(renamed),
            )

    def predict_dataloader(self) -> DataLoader:
        """Loader of ``predict_dir``'s volumes, or of the test volumes without one."""
        if self.predict_data is None:
            return self.test_dataloader()
        return DataLoader(
            self.predict_data,
            shuffle=False,
            batch_size=self.eval_batch_size,
            num_workers=self.num_workers,
            collate_fn=self.predict_data.collate_fn,
        )


__all__ = ["MedicalVolumes"]
