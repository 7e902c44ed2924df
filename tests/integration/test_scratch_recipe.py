"""The from-scratch recipe: ``scratch_encoder_lr`` applies only to an encoder that starts from random weights.

Looked at during training (a callback reads the optimizer's encoder learning rate), through Engine.fit.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torchvision
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_ea2d import EA2D
from tests.helpers.engine import cpu_engine
from tests.helpers.tiny_data import make_tiny_folder_dataset, tiny_folder

PAPER_ENCODER_LR, SCRATCH_LR = 1e-5, 1e-3


class EncoderLR(Callback):
    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: object) -> None:
        del pl_module, args
        self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])  # group 0: the encoder


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder_dataset(tmp_path_factory.mktemp("tiny"))


def _fit(model: EA2D, root: Path, out: Path) -> list[float]:
    callback = EncoderLR()
    engine = cpu_engine(out, max_steps=1, callbacks=[callback])
    engine.fit(model=model, datamodule=tiny_folder(root))
    return callback.seen


def test_random_encoder_gets_the_scratch_lr(
    dataset_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=64, scratch_encoder_lr=SCRATCH_LR)
    with caplog.at_level(logging.INFO, logger="anomalib_ea2d"):
        seen = _fit(model, dataset_root, tmp_path)
    assert seen == [SCRATCH_LR]
    assert sum("from-scratch recipe" in record.getMessage() for record in caplog.records) == 1


def test_encoder_from_weights_keeps_the_paper_lr(dataset_root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    model = EA2D(
        backbone="resnet18", pre_trained=True, backbone_weights=weights, image_size=64, scratch_encoder_lr=SCRATCH_LR
    )
    assert _fit(model, dataset_root, tmp_path) == [PAPER_ENCODER_LR]
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=64)  # no scratch_encoder_lr: the paper's
    assert _fit(model, dataset_root, tmp_path / "default") == [PAPER_ENCODER_LR]
