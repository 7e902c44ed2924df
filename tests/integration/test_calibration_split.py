"""EA2D's map statistics come from the datamodule's held-out calibration images, through ``Engine.fit``.

With ``calibration_split_ratio`` the training loop (and so EA2D's weights) never sees the held-out
images, and ``standardize_maps`` fits its statistics on exactly those images; without it, on the
training images (checked in ``test_recipe_switches``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything

from anomalib_ea2d import EA2D
from anomalib_ea2d.callbacks import EncoderPretraining
from anomalib_ea2d.data import MedicalFolder
from tests.helpers.engine import cpu_engine
from tests.helpers.map_statistics import map_mean_by_hand
from tests.helpers.tiny_data import FOLDER_ARGS, make_tiny_folder_dataset

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64


class SeenImages(Callback):
    """Every image path a training batch carried, and the map statistics with their by-hand fits at validation."""

    def __init__(self) -> None:
        self.trained_on: set[str] = set()
        self.checks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        del trainer, pl_module, batch_idx
        self.trained_on.update(batch.image_path)

    def on_validation_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        del batch, dataloader_idx
        if batch_idx:
            return
        datamodule = trainer.datamodule
        fitted = pl_module.model.map_standardizer.mean.clone()
        calibration, training = datamodule.calibration_dataloader(), datamodule.train_dataloader()
        self.checks.append((fitted, map_mean_by_hand(pl_module, calibration), map_mean_by_hand(pl_module, training)))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder_dataset(tmp_path_factory.mktemp("tiny"))


def _datamodule(root: Path, **overrides: Any) -> MedicalFolder:
    return MedicalFolder(root=root, **FOLDER_ARGS, seed=0, **overrides)


def test_map_statistics_are_fitted_on_the_held_out_images_the_model_never_trained_on(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed_everything(0)
    probe = SeenImages()
    pretraining = EncoderPretraining(steps=2)
    seen_by_pretraining: set[str] = set()
    original = pretraining.on_fit_start

    def spy(trainer: Trainer, pl_module: LightningModule) -> None:
        # Record the batches the phase itself draws from the training loader, then restore the loader.
        datamodule, loader = trainer.datamodule, trainer.datamodule.train_dataloader

        def recording() -> Any:
            for batch in loader():
                seen_by_pretraining.update(batch.image_path)
                yield batch

        datamodule.train_dataloader = recording
        try:
            original(trainer, pl_module)
        finally:
            datamodule.train_dataloader = loader

    pretraining.on_fit_start = spy  # type: ignore[method-assign]
    datamodule = _datamodule(root, calibration_split_ratio=0.25)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, standardize_maps=True, max_steps=4)
    engine = cpu_engine(tmp_path, callbacks=[probe, pretraining], val_check_interval=4, check_val_every_n_epoch=None)
    with caplog.at_level(logging.INFO):
        engine.fit(model=model, datamodule=datamodule)
    held_out = set(datamodule.calibration_data.samples.image_path)
    assert len(held_out) == 2
    assert probe.trained_on == set(datamodule.train_data.samples.image_path)
    assert not probe.trained_on & held_out
    assert seen_by_pretraining  # the phase ran, on training images only
    assert not seen_by_pretraining & held_out
    ((fitted, on_calibration, on_training),) = probe.checks
    torch.testing.assert_close(fitted, on_calibration.to(fitted.dtype), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(fitted, on_training.to(fitted.dtype), rtol=1e-3, atol=1e-4)
    assert "Map statistics fitted on 2 held-out normal calibration images" in caplog.text


def test_without_a_calibration_split_the_training_images_are_used(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed_everything(0)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, standardize_maps=True, max_steps=2)
    engine = cpu_engine(tmp_path, val_check_interval=2, check_val_every_n_epoch=None)
    with caplog.at_level(logging.INFO):
        engine.fit(model=model, datamodule=_datamodule(root))
    assert "Map statistics fitted on 8 normal training images" in caplog.text
