"""``anomalib predict --data <path>`` of EA2D: images through a checked medical loader, volumes as MedicalVolumes."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from anomalib.data import PredictDataset
from torch.utils.data import DataLoader

from anomalib_ea2d import EA2D
from anomalib_ea2d.data.datasets.medical_folder import MedicalPredictDataset
from anomalib_ea2d.data.readers.predict import medical_predict_loader, route_predict_paths, volume_datamodule
from anomalib_ea2d.data.volumes import MedicalVolumes
from tests.helpers.images import write_png16
from tests.helpers.volumes import head, write_dicom_series


def _folder(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    for index in range(count):
        write_png16(root / f"{index}.png", np.full((16, 20), 1000 * (index + 1)))
    return root


def test_an_image_path_becomes_engine_predicts_loader_over_the_medical_dataset(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "plain", 3)
    theirs = PredictDataset(folder)
    loader = medical_predict_loader(folder)
    assert type(loader.dataset) is MedicalPredictDataset
    assert loader.dataset.image_filenames == theirs.image_filenames
    assert (loader.batch_size, loader.num_workers, loader.pin_memory) == (1, 0, True)  # as Engine.predict builds it
    batch = next(iter(loader))
    assert float(batch.image.max()) == pytest.approx(1000 / 65535)  # 16 bits kept


def test_file_names_anomalib_lists_are_read_whatever_their_characters(tmp_path: Path) -> None:
    """A folder whose files anomalib's PredictDataset lists (non-ASCII, spaces) predicts, as it trains."""
    folder = tmp_path / "odd"
    folder.mkdir()
    names = ["scan ü 患者 000.png", "scan ü 患者 001.png"]
    for index, name in enumerate(names):
        write_png16(folder / name, np.full((16, 20), 1000 * (index + 1)))
    loader = medical_predict_loader(folder)
    assert [Path(name).name for name in loader.dataset.image_filenames] == names
    maxima = sorted(float(batch.image.max()) for batch in loader)
    assert maxima == pytest.approx([1000 / 65535, 2000 / 65535])


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


def test_only_the_served_models_predictions_of_paths_are_rerouted(tmp_path: Path) -> None:
    class FakeEngine:
        def predict(
            self, model: object = None, dataloaders: object = None, datamodule: object = None, data_path: object = None
        ) -> tuple:
            return dataloaders, datamodule, data_path

    route_predict_paths(FakeEngine, serves=lambda model: isinstance(model, EA2D))
    route_predict_paths(FakeEngine, serves=lambda model: True)  # wrapped once
    assert not hasattr(FakeEngine.predict.__wrapped__, "__wrapped__")
    nib.save(nib.Nifti1Image(head(), np.eye(4)), tmp_path / "t1.nii.gz")
    model = EA2D(backbone="resnet18", pre_trained=False)
    loaders, datamodule, data_path = FakeEngine().predict(model, data_path=tmp_path / "t1.nii.gz")
    assert isinstance(datamodule, MedicalVolumes)
    assert (loaders, data_path) == (None, None)
    images = _folder(tmp_path / "images", 2)
    given = DataLoader(PredictDataset(images))
    loaders, datamodule, data_path = FakeEngine().predict(model, dataloaders=given, data_path=images)
    assert loaders[0] is given  # the user's own loader stays
    assert type(loaders[1].dataset) is MedicalPredictDataset
    assert (datamodule, data_path) == (None, None)
    assert FakeEngine().predict(object(), data_path=tmp_path / "t1.nii.gz") == (None, None, tmp_path / "t1.nii.gz")
