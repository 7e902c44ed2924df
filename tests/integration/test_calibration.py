"""No NaN thresholds: EA2D validates after its last step, and an uncalibrated model refuses test/predict.

Through anomalib's ``Engine`` on the tiny Folder set (8 training images, batch 4: two steps an
epoch). Training for 3 steps stops inside the second epoch, where Lightning alone would not
validate again: the thresholds would belong to the weights of step 2, or be NaN for a run shorter
than one epoch.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from anomalib.deploy import ExportType
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_ea2d import EA2D
from anomalib_ea2d.callbacks.guards import UncalibratedModelError
from tests.helpers.engine import cpu_engine
from tests.helpers.tiny_data import make_tiny_folder_dataset, tiny_folder

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64


class ValidationSteps(Callback):
    """Record the training step at which each validation of a fit ran."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del pl_module
        self.steps.append(trainer.global_step)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder_dataset(tmp_path_factory.mktemp("tiny"), size=SIZE)


def _model() -> EA2D:
    torch.manual_seed(0)
    return EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE)


@pytest.mark.parametrize("max_steps", [1, 3])
def test_training_that_stops_inside_an_epoch_validates_its_final_weights(
    dataset_root: Path, tmp_path: Path, max_steps: int
) -> None:
    probe = ValidationSteps()
    model = _model()
    engine = cpu_engine(tmp_path, max_steps=max_steps, callbacks=[probe])
    engine.fit(model=model, datamodule=tiny_folder(dataset_root))
    assert probe.steps[-1] == max_steps  # the last validation saw the final weights
    assert probe.steps == sorted(set(probe.steps))  # and no step was validated twice
    post = model.post_processor
    for name in ("image_threshold", "image_min", "image_max"):
        assert not math.isnan(float(getattr(post, name))), name
    # The checkpoint written by the run carries those statistics: a fresh engine tests from it.
    checkpoint = Path(engine.trainer.checkpoint_callback.best_model_path)
    loaded = EA2D.load_from_checkpoint(checkpoint, weights_only=False)
    assert float(loaded.post_processor.image_threshold) == pytest.approx(float(post.image_threshold))
    (results,) = cpu_engine(tmp_path / "test").test(model=loaded, datamodule=tiny_folder(dataset_root), verbose=False)
    assert not math.isnan(results["image_F1Score"])


def test_a_model_that_never_validated_stops_test_and_predict_with_one_message(
    dataset_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _model()
    engine = cpu_engine(tmp_path, max_steps=1, limit_val_batches=0)
    engine.fit(model=model, datamodule=tiny_folder(dataset_root))
    assert math.isnan(float(model.post_processor.image_threshold))
    advice = r"EA2D cannot (test|predict): its post-processor was never calibrated .*anomalib validate"
    with pytest.raises(UncalibratedModelError, match=advice.replace("(test|predict)", "test")):
        engine.test(model=model, datamodule=tiny_folder(dataset_root))
    with pytest.raises(UncalibratedModelError, match=advice.replace("(test|predict)", "predict")):
        engine.predict(model=model, datamodule=tiny_folder(dataset_root))
    with caplog.at_level(logging.WARNING):
        engine.export(model=model, export_type=ExportType.TORCH, export_root=tmp_path / "export")
    assert any("never calibrated" in r.getMessage() and "raw scores" in r.getMessage() for r in caplog.records)
    # Validating calibrates it; then it tests.
    cpu_engine(tmp_path / "validate").validate(model=model, datamodule=tiny_folder(dataset_root))
    (results,) = cpu_engine(tmp_path / "test").test(model=model, datamodule=tiny_folder(dataset_root), verbose=False)
    assert not math.isnan(results["image_F1Score"])
