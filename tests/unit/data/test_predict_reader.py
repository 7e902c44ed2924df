"""Plain ``anomalib predict --data <path>``: images read with checked dataloaders, volumes with ``MedicalVolumes``."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from anomalib.data import PredictDataset
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image
from torch.utils.data import DataLoader

from anomalib_ea2d import EA2D
from anomalib_ea2d.data.datamodules.medical_folder import MedicalPredictDataset
from anomalib_ea2d.data.readers.predict import (
    read_predict_paths_with_medical_reader,
    route_volume_predictions,
    volume_datamodule,
)
from anomalib_ea2d.data.volumes import MedicalVolumes
from tests.helpers.volumes import head, write_dicom_series


def _folder(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for index in range(count):
        Image.fromarray(np.full((16, 20), 1000 * (index + 1), np.uint16)).save(root / f"{index}.png")
    return root


def test_only_anomalibs_plain_predict_dataset_is_replaced_and_only_when_predicting(tmp_path: Path) -> None:
    theirs = PredictDataset(_folder(tmp_path / "plain", 3))
    chosen = DataLoader(MedicalPredictDataset(_folder(tmp_path / "chosen", 2)), batch_size=2)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.predict_loop._data_source.instance = [DataLoader(theirs, batch_size=3), chosen]  # as Engine.predict does
    read_predict_paths_with_medical_reader(trainer)  # not predicting: nothing changes
    assert type(trainer.predict_loop._data_source.instance[0].dataset) is PredictDataset

    trainer.state.fn = TrainerFn.PREDICTING  # as Trainer.predict sets it before calling the model's setup
    read_predict_paths_with_medical_reader(trainer)
    replaced, kept = trainer.predict_loop._data_source.instance
    assert type(replaced.dataset) is MedicalPredictDataset
    assert replaced.dataset.image_filenames == theirs.image_filenames
    assert replaced.batch_size == 3
    assert kept is chosen


def test_a_single_plain_dataloader_is_replaced_too(tmp_path: Path) -> None:
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.predict_loop._data_source.instance = DataLoader(PredictDataset(_folder(tmp_path / "plain", 2)))
    trainer.state.fn = TrainerFn.PREDICTING
    read_predict_paths_with_medical_reader(trainer)
    assert type(trainer.predict_loop._data_source.instance.dataset) is MedicalPredictDataset


def test_paths_of_volumes_become_a_medical_volumes_datamodule(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    nib.save(nib.Nifti1Image(head(), np.eye(4)), scans / "t1.nii.gz")
    series = write_dicom_series(tmp_path / "series", np.round(head()).astype(np.int16), modality="MR")
    for path, name in ((scans, "scans"), (scans / "t1.nii.gz", "t1"), (series, "series"), (tmp_path, tmp_path.name)):
        datamodule = volume_datamodule(path)
        assert isinstance(datamodule, MedicalVolumes), path
        assert (datamodule.name, datamodule.predict_dir) == (name, path)
    assert volume_datamodule(_folder(tmp_path / "images", 2)) is None  # images: anomalib's own path
    assert volume_datamodule(tmp_path / "images" / "0.png") is None


def test_folders_of_both_or_neither_are_refused_by_name(tmp_path: Path) -> None:
    mixed = _folder(tmp_path / "mixed", 1)
    nib.save(nib.Nifti1Image(head(), np.eye(4)), mixed / "t1.nii")
    with pytest.raises(ValueError, match=r"mixed holds both images and volumes; put them in separate folders"):
        volume_datamodule(mixed)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no scans here")
    with pytest.raises(ValueError, match=r"notes holds no images and no volumes .*; point --data at a folder"):
        volume_datamodule(tmp_path / "notes")


def test_only_ea2d_predictions_of_volume_paths_are_rerouted(tmp_path: Path) -> None:
    class FakeEngine:
        def predict(self, model: object = None, datamodule: object = None, data_path: object = None) -> tuple:
            return datamodule, data_path

    route_volume_predictions(FakeEngine)
    route_volume_predictions(FakeEngine)  # wrapped once
    assert not hasattr(FakeEngine.predict.__wrapped__, "__wrapped__")
    nib.save(nib.Nifti1Image(head(), np.eye(4)), tmp_path / "t1.nii.gz")
    model = EA2D(backbone="resnet18", pre_trained=False)
    datamodule, data_path = FakeEngine().predict(model, data_path=tmp_path / "t1.nii.gz")
    assert isinstance(datamodule, MedicalVolumes)
    assert data_path is None
    assert FakeEngine().predict(object(), data_path=tmp_path / "t1.nii.gz") == (None, tmp_path / "t1.nii.gz")
