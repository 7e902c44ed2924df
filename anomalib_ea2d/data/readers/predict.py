"""Plain ``anomalib predict --data <folder or file>`` read and checked with the medical-image reader.

anomalib's ``Engine.predict`` wraps a plain path in its own ``PredictDataset``;
:func:`read_predict_paths_with_medical_reader` (called from the EA2D model's ``setup`` through
:mod:`anomalib_ea2d.callbacks.guards`) swaps each predict dataloader over exactly such a dataset for one over
:class:`~anomalib_ea2d.data.datasets.medical_folder.MedicalPredictDataset`, so 16-bit images keep their range
and all unusable files are listed before predicting. A dataset chosen by the user is left alone.

Volumes take another road, because their per-volume outputs need a datamodule: when the path is a
NIfTI file (``.nii``, ``.nii.gz``), a DICOM series folder, or a folder of such volumes,
:func:`route_volume_predictions` (applied to anomalib's ``Engine`` by the start-up hook) has
``Engine.predict`` of an EA2D model predict them through
:class:`~anomalib_ea2d.data.volumes.MedicalVolumes` (``predict_dir`` = the path), which checks
every volume first and writes ``volume_scores.csv`` and the NIfTI anomaly maps.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomalib.data import PredictDataset
from anomalib.data.utils.image import is_image_file
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader

from anomalib_ea2d.data.datamodules.medical_folder import MedicalPredictDataset

if TYPE_CHECKING:
    from anomalib_ea2d.data.volumes import MedicalVolumes

logger = logging.getLogger(__name__)


def read_predict_paths_with_medical_reader(trainer: Trainer | None) -> None:
    """Make ``anomalib predict --data <folder or file>`` read and check its images with the medical-image reader.

    anomalib's ``Engine.predict`` wraps a plain path in its ``PredictDataset``, whose Pillow reader
    stops at a corrupt file with a bare ``UnidentifiedImageError`` and clips 16-bit images to 8 bits.
    Called from the model's ``setup`` (after the trainer has its predict dataloaders, before it builds
    them), this replaces each dataloader over exactly that dataset by one over
    :meth:`MedicalPredictDataset.from_predict_dataset`: same files, order, batch size and collation;
    8-bit images give the same tensors; unusable files are listed in one error before predicting.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> read_predict_paths_with_medical_reader(Trainer(logger=False, enable_progress_bar=False))
    """
    if trainer is None or trainer.state.fn != TrainerFn.PREDICTING:
        return
    source = trainer.predict_loop._data_source  # noqa: SLF001 - where Trainer.predict keeps the dataloaders given
    instance = source.instance
    if isinstance(instance, DataLoader):
        source.instance = _medical_loader(instance)
    elif isinstance(instance, list):
        source.instance = [_medical_loader(item) if isinstance(item, DataLoader) else item for item in instance]


def _medical_loader(loader: DataLoader) -> DataLoader:
    if type(loader.dataset) is not PredictDataset:  # a dataset chosen by the user (or already ours) stays
        return loader
    dataset = MedicalPredictDataset.from_predict_dataset(loader.dataset)
    logger.info("EA2D predict: %d images read with the medical-image reader (all checked).", len(dataset))
    return DataLoader(
        dataset,
        batch_size=loader.batch_size,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
    )


def _holds_volumes(folder: Path) -> bool:
    """Whether ``folder`` is a DICOM series, or holds NIfTI files or DICOM series folders directly."""
    from anomalib_ea2d.data.volumes.dicom import is_series_folder  # noqa: PLC0415 - pydicom only when needed
    from anomalib_ea2d.data.volumes.nifti import is_nifti  # noqa: PLC0415

    if is_series_folder(folder):
        return True
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return any((p.is_file() and is_nifti(p)) or is_series_folder(p) for p in entries)


def volume_datamodule(path: str | Path) -> MedicalVolumes | None:
    """A ``MedicalVolumes`` predicting the volumes at ``path``, or ``None`` where ``path`` holds images.

    ``path`` is a NIfTI file, a DICOM series folder or a folder holding such volumes directly. The
    datamodule is named after the path (the results go to ``<root>/EA2D/<name>/latest``), reads with
    ``num_workers=0`` like anomalib's own predict loader, and checks every volume before predicting.

    Raises:
        ValueError: If the folder holds both images and volumes, or neither.

    Example:
        >>> import tempfile, numpy as np, nibabel as nib
        >>> folder = Path(tempfile.mkdtemp()) / "scans"
        >>> folder.mkdir()
        >>> nib.save(nib.Nifti1Image(np.ones((8, 8, 4), np.float32), np.eye(4)), folder / "t1.nii.gz")
        >>> volume_datamodule(folder).name, volume_datamodule(folder / "t1.nii.gz").name
        ('scans', 't1')
    """
    from anomalib_ea2d.data.volumes import MedicalVolumes  # noqa: PLC0415 - nibabel/pydicom only when needed
    from anomalib_ea2d.data.volumes.records import volume_name  # noqa: PLC0415

    path = Path(path).absolute()
    if path.is_file():
        if not path.name.lower().endswith((".nii", ".nii.gz")):
            return None
    elif path.is_dir():
        volumes = _holds_volumes(path)
        images = any(is_image_file(p) for p in path.glob("**/*"))
        if volumes and images:
            msg = f"Predict folder {path} holds both images and volumes; put them in separate folders and predict each."
            raise ValueError(msg)
        if not volumes:
            if images:
                return None
            msg = (
                f"Predict folder {path} holds no images and no volumes (.nii/.nii.gz files or DICOM series folders "
                "directly inside it); point --data at a folder or file of either."
            )
            raise ValueError(msg)
    else:
        return None  # anomalib reports a path that does not exist
    return MedicalVolumes(name=volume_name(path), normal_dir=[], predict_dir=path, num_workers=0)


def _is_ea2d(model: object) -> bool:
    from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D  # noqa: PLC0415 - this module is imported by it

    return isinstance(model, EA2D)


def _engine_model(engine: Any) -> object:  # noqa: ANN401 - anomalib's Engine
    try:
        return engine.model
    except Exception:  # noqa: BLE001 - anomalib raises when no model was given yet
        return None


def route_volume_predictions(engine_class: type) -> None:
    """Make ``engine_class.predict`` (anomalib's ``Engine``) predict volumes given as ``data_path`` with EA2D.

    Wraps the method once. When the model is EA2D, no datamodule is given and ``data_path`` holds
    volumes (see :func:`volume_datamodule`), the call goes on with ``datamodule=MedicalVolumes(...)``
    instead of ``data_path``; every other call is passed on unchanged.

    Example:
        >>> class FakeEngine:
        ...     def predict(self, model=None, datamodule=None, data_path=None):
        ...         return datamodule, data_path
        >>> route_volume_predictions(FakeEngine)
        >>> FakeEngine().predict(data_path="images/")  # not an EA2D model: unchanged
        (None, 'images/')
    """
    original: Callable[..., Any] = engine_class.predict
    if getattr(original, "routes_volumes", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def predict(self: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - Engine.predict's own types
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        model = arguments.get("model")
        if (
            arguments.get("data_path") is not None
            and arguments.get("datamodule") is None
            and _is_ea2d(model if model is not None else _engine_model(self))
        ):
            datamodule = volume_datamodule(arguments["data_path"])
            if datamodule is not None:
                logger.info(
                    "EA2D predict: %s holds volumes; predicting them with MedicalVolumes.", arguments["data_path"]
                )
                arguments["datamodule"], arguments["data_path"] = datamodule, None
        return original(*bound.args, **bound.kwargs)

    predict.routes_volumes = True  # type: ignore[attr-defined]
    engine_class.predict = predict  # type: ignore[method-assign]


__all__ = ["read_predict_paths_with_medical_reader", "route_volume_predictions", "volume_datamodule"]
