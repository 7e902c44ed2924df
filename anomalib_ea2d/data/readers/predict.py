"""``Engine.predict(data_path=...)`` (``anomalib predict --data <folder or file>``) read with this project's readers.

anomalib's ``Engine.predict`` wraps a plain path in its own ``PredictDataset``, whose Pillow reader
clips 16-bit images to 8 bits and stops at a corrupt file with a bare ``UnidentifiedImageError``.
:func:`route_predict_paths` wraps ``Engine.predict`` so that, for the models it is told to serve
(the start-up hook :mod:`anomalib_ea2d._hook` passes "is it EA2D"), the path is read instead by:

* images: :class:`~anomalib_ea2d.data.datasets.medical_folder.MedicalPredictDataset` over the same
  files, in the same order, behind the same kind of dataloader ``Engine.predict`` builds: 16-bit
  and float images keep their range, 8-bit images give anomalib's tensors, and every unusable file
  is listed in one error before predicting;
* volumes (a NIfTI file ``.nii``/``.nii.gz``, a DICOM series folder, or a folder of such volumes):
  :class:`~anomalib_ea2d.data.volumes.MedicalVolumes` (``predict_dir`` = the path), which checks
  every volume first and writes ``volume_scores.csv`` and the NIfTI anomaly maps.

The path is replaced by a dataloader or a datamodule, the arguments ``Engine.predict`` documents,
before the call; nothing of Lightning's trainer is touched. A dataset or dataloader the user gives
is left alone.
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
from torch.utils.data import DataLoader

from anomalib_ea2d.data.datasets.medical_folder import MedicalPredictDataset

if TYPE_CHECKING:
    from anomalib_ea2d.data.volumes import MedicalVolumes

logger = logging.getLogger(__name__)


def medical_predict_loader(path: str | Path) -> DataLoader:
    """The dataloader ``Engine.predict`` builds for ``data_path``, over :class:`MedicalPredictDataset` instead.

    Same files, order, batch size (1) and collation as anomalib's ``PredictDataset`` loader; the files
    are all checked first.

    Raises:
        ValueError: Listing every unusable file.

    Example:
        >>> import tempfile, numpy as np
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(folder / "scan.png")
        >>> float(next(iter(medical_predict_loader(folder))).image.max())
        1.0
    """
    dataset = MedicalPredictDataset.from_predict_dataset(PredictDataset(path))
    logger.info("Predict: %d images read with the medical-image reader (all checked).", len(dataset))
    return DataLoader(dataset, collate_fn=dataset.collate_fn, pin_memory=True)


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


def _engine_model(engine: Any) -> object:  # noqa: ANN401 - anomalib's Engine
    try:
        return engine.model
    except Exception:  # noqa: BLE001 - anomalib raises when no model was given yet
        return None


def route_predict_paths(engine_class: type, serves: Callable[[object], bool]) -> None:
    """Make ``engine_class.predict`` (anomalib's ``Engine``) read a ``data_path`` with this project's readers.

    Wraps the method once. When ``serves(model)`` holds, no datamodule is given and ``data_path`` is
    set, the call goes on with ``datamodule=MedicalVolumes(...)`` if the path holds volumes (see
    :func:`volume_datamodule`), else with the :func:`medical_predict_loader` of the path added to
    ``dataloaders``, and without ``data_path``; every other call is passed on unchanged.

    Example:
        >>> class FakeEngine:
        ...     def predict(self, model=None, dataloaders=None, datamodule=None, data_path=None):
        ...         return dataloaders, datamodule, data_path
        >>> route_predict_paths(FakeEngine, serves=lambda model: model == "ours")
        >>> FakeEngine().predict("theirs", data_path="images/")  # another model: unchanged
        (None, None, 'images/')
    """
    original: Callable[..., Any] = engine_class.predict
    if getattr(original, "routes_predict_paths", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def predict(self: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - Engine.predict's own types
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        model = arguments.get("model")
        data_path = arguments.get("data_path")
        if (
            data_path is not None
            and arguments.get("datamodule") is None
            and serves(model if model is not None else _engine_model(self))
        ):
            datamodule = volume_datamodule(data_path)
            if datamodule is not None:
                logger.info("Predict: %s holds volumes; predicting them with MedicalVolumes.", data_path)
                arguments["datamodule"] = datamodule
            else:
                given = arguments.get("dataloaders")
                given = [] if given is None else [given] if isinstance(given, DataLoader) else list(given)
                arguments["dataloaders"] = [*given, medical_predict_loader(data_path)]
            arguments["data_path"] = None
        return original(*bound.args, **bound.kwargs)

    predict.routes_predict_paths = True  # type: ignore[attr-defined]
    engine_class.predict = predict  # type: ignore[method-assign]


__all__ = ["medical_predict_loader", "route_predict_paths", "volume_datamodule"]
