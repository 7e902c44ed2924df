"""EA2D's eval runs on a fused inference copy through anomalib's Engine, and the plain path is one switch away.

``EA2D(inference_path="fused")`` (default) validates, tests and predicts with a
:meth:`~anomalib_ea2d.EA2DModel.fuse` copy; ``"plain"`` with the trainable modules. Both must give
the same scores and maps within 1e-5, and neither may touch training, checkpoints or export:
fit -> validate -> test -> predict -> fit again, on a tiny generated set (ResNet-18, 64 px).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from anomalib.data import Folder
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_ea2d import EA2D
from tests.helpers.recorder import TestRecorder
from tests.helpers.tiny_data import FOLDER_ARGS, make_tiny_folder_dataset

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-5
PATHS = ("fused", "plain")


class StepNetworks(Callback):
    """Records, per stage, whether each step ran a fused copy and that ``pl_module.model`` stayed trainable."""

    def __init__(self) -> None:
        self.fused: dict[str, set[bool]] = {}

    def _record(self, stage: str, pl_module: LightningModule) -> None:
        assert not pl_module.model.is_fused
        network = pl_module.inference_model
        assert (network is pl_module.model) != network.is_fused
        self.fused.setdefault(stage, set()).add(network.is_fused)

    def on_validation_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._record("validate", pl_module)

    def on_test_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._record("test", pl_module)

    def on_predict_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        self._record("predict", pl_module)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        assert pl_module.inference_model is pl_module.model
        self._record("train", pl_module)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder_dataset(tmp_path_factory.mktemp("tiny"))


def _datamodule(root: Path) -> Folder:
    return Folder(root=root, seed=0, **FOLDER_ARGS)  # the same validation/test split in every run


def _engine(root: Path, callbacks: list[Callback], **kwargs: Any) -> Engine:
    return Engine(
        default_root_dir=root,
        callbacks=callbacks,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained(dataset_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StepNetworks]:
    """Fit 3 steps with the default inference path; the checkpoint and what the steps ran."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("fit")
    networks = StepNetworks()
    engine = _engine(root, [networks], max_steps=3)
    engine.fit(model=EA2D(backbone="resnet18", pre_trained=False, image_size=64), datamodule=_datamodule(dataset_root))
    return Path(engine.trainer.checkpoint_callback.best_model_path), networks


def _load(checkpoint: Path, path: str) -> EA2D:
    return EA2D.load_from_checkpoint(checkpoint, inference_path=path, weights_only=False)


def test_fit_trains_the_plain_modules_and_validates_on_the_fused_copy(trained: tuple[Path, StepNetworks]) -> None:
    checkpoint, networks = trained
    assert networks.fused == {"train": {False}, "validate": {True}}
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert any(key.endswith("bn1.running_mean") for key in state)  # the trainable BatchNorms, not folded ones
    assert not [key for key in state if "fused" in key]


def test_test_scores_and_maps_agree_on_both_paths(trained: tuple[Path, StepNetworks], dataset_root: Path) -> None:
    checkpoint, _ = trained
    recorded, metrics = {}, {}
    for path in PATHS:
        recorder, networks = TestRecorder(), StepNetworks()
        engine = _engine(checkpoint.parent / path, [recorder, networks])
        (metrics[path],) = engine.test(model=_load(checkpoint, path), datamodule=_datamodule(dataset_root))
        assert networks.fused == {"test": {path == "fused"}}
        recorded[path] = recorder
    fused, plain = recorded["fused"], recorded["plain"]
    assert [b.image_path for b in fused.batches] == [b.image_path for b in plain.batches]
    torch.testing.assert_close(torch.cat(fused.raw_scores), torch.cat(plain.raw_scores), atol=TOL, rtol=0)
    torch.testing.assert_close(torch.cat(fused.raw_maps), torch.cat(plain.raw_maps), atol=TOL, rtol=0)
    assert metrics["fused"]["image_AUROC"] == pytest.approx(metrics["plain"]["image_AUROC"], abs=1e-6)
    assert metrics["fused"]["pixel_AUROC"] == pytest.approx(metrics["plain"]["pixel_AUROC"], abs=1e-4)


def test_predict_scores_and_maps_agree_on_both_paths(trained: tuple[Path, StepNetworks], dataset_root: Path) -> None:
    checkpoint, _ = trained
    outputs = {}
    for path in PATHS:
        networks = StepNetworks()
        engine = _engine(checkpoint.parent / f"predict_{path}", [networks])
        outputs[path] = engine.predict(model=_load(checkpoint, path), datamodule=_datamodule(dataset_root))
        assert networks.fused == {"predict": {path == "fused"}}
    assert len(outputs["fused"]) == len(outputs["plain"]) > 0
    for fused, plain in zip(outputs["fused"], outputs["plain"], strict=True):
        assert fused.image_path == plain.image_path
        # After post-processing (normalised to [0, 1] by the validation range: differences stay below TOL too).
        torch.testing.assert_close(fused.pred_score, plain.pred_score, atol=TOL, rtol=0)
        torch.testing.assert_close(fused.anomaly_map, plain.anomaly_map, atol=TOL, rtol=0)
        assert torch.equal(fused.pred_label, plain.pred_label)


def test_fit_validate_test_predict_then_fit_again_and_export(
    trained: tuple[Path, StepNetworks], dataset_root: Path, tmp_path: Path
) -> None:
    """Eval runs in between leave the trainable model as it was: fitting on continues from the same weights."""
    checkpoint, _ = trained
    model = _load(checkpoint, "fused")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    networks = StepNetworks()
    engine = _engine(tmp_path, [networks], max_steps=2)
    engine.validate(model=model, datamodule=_datamodule(dataset_root))
    engine.test(model=model, datamodule=_datamodule(dataset_root))
    engine.predict(model=model, datamodule=_datamodule(dataset_root))
    assert model.inference_model is model.model
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[key], value) for key, value in before.items())
    torch.manual_seed(0)
    engine.fit(model=model, datamodule=_datamodule(dataset_root))
    assert engine.trainer.global_step == 2
    assert networks.fused == {stage: {stage != "train"} for stage in ("validate", "test", "predict", "train")}
    trained_on = model.state_dict()
    assert any(not torch.equal(trained_on[key], before[key]) for key in before if key.startswith("model.branches."))
    saved = torch.load(engine.trainer.checkpoint_callback.best_model_path, map_location="cpu", weights_only=False)
    assert saved["state_dict"].keys() == before.keys()
    exported = engine.export(model=model, export_type=ExportType.TORCH, export_root=tmp_path / "export")
    network = torch.load(exported, map_location="cpu", weights_only=False)["model"].model
    assert not network.is_fused  # anomalib exports the module's forward: the plain modules


def test_inference_path_is_checked() -> None:
    with pytest.raises(ValueError, match="inference_path must be 'fused' or 'plain', got 'fast'"):
        EA2D(backbone="resnet18", pre_trained=False, inference_path="fast")  # type: ignore[arg-type]
