"""Plain ``anomalib predict --data <folder>``: anomalib's own predict dataloaders are swapped for checked ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from anomalib.data import PredictDataset
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image
from torch.utils.data import DataLoader

from anomalib_ea2d.data.medical_folder import MedicalPredictDataset
from anomalib_ea2d.data.predict_reader import read_predict_paths_with_medical_reader


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
