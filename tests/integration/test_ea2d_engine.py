"""EA2D through anomalib's Engine: fit, validate, test, predict and export (torch, ONNX, OpenVINO).

Follows the pattern of anomalib's own model integration tests, on a tiny generated dataset with
masks, a ResNet-18 encoder without pretrained weights and 64 px inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.deploy import CompressionType, ExportType, OpenVINOInferencer
from anomalib.engine import Engine
from PIL import Image

from anomalib_ea2d import EA2D
from tests.helpers.engine import cpu_engine
from tests.helpers.ranking import f1
from tests.helpers.recorder import TestRecorder
from tests.helpers.tiny_data import make_tiny_folder_dataset, tiny_folder

IMAGE_SIZE = 64


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder_dataset(tmp_path_factory.mktemp("tiny"))


def _model() -> EA2D:
    return EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)


@pytest.fixture(scope="module")
def trained(dataset_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, EA2D, Path]:
    """Fit once (4 steps) and share the engine, model and checkpoint with the tests below."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("results")
    engine = cpu_engine(root, max_steps=4)
    model = _model()
    engine.fit(model=model, datamodule=tiny_folder(dataset_root))
    checkpoint = Path(engine.trainer.checkpoint_callback.best_model_path)
    return engine, model, checkpoint


def test_fit_respects_user_max_steps(trained: tuple[Engine, EA2D, Path]) -> None:
    engine, _, checkpoint = trained
    assert engine.trainer.global_step == 4  # the user's max_steps, not the recipe's 2000
    assert checkpoint.is_file()


def test_validate(trained: tuple[Engine, EA2D, Path], dataset_root: Path) -> None:
    engine, model, _ = trained
    results = engine.validate(model=model, datamodule=tiny_folder(dataset_root))
    assert results is not None


def test_test_reports_image_and_pixel_metrics(trained: tuple[Engine, EA2D, Path], dataset_root: Path) -> None:
    """The logged metrics are those of the model's raw scores and thresholded labels, recomputed by hand."""
    _, model, checkpoint = trained
    recorder = TestRecorder()
    engine = cpu_engine(checkpoint.parent, callbacks=[recorder])
    (results,) = engine.test(model=model, datamodule=tiny_folder(dataset_root), ckpt_path=checkpoint)
    assert results["image_AUROC"] == pytest.approx(recorder.image_auroc(), abs=1e-6)
    assert results["pixel_AUROC"] == pytest.approx(recorder.pixel_auroc(), abs=1e-5)
    labels = recorder.column("gt_label").astype(bool)
    assert results["image_F1Score"] == pytest.approx(f1(recorder.column("pred_label"), labels), abs=1e-6)
    assert 0.0 <= results["pixel_PRO"] <= 1.0


def test_predict(trained: tuple[Engine, EA2D, Path], dataset_root: Path) -> None:
    engine, model, checkpoint = trained
    predictions = engine.predict(model=model, datamodule=tiny_folder(dataset_root), ckpt_path=checkpoint)
    assert predictions
    batch = predictions[0]
    assert batch.anomaly_map.shape[-2:] == batch.image.shape[-2:]
    assert torch.isfinite(batch.pred_score).all()
    assert batch.pred_label is not None


def _sample_images(dataset_root: Path) -> list[Path]:
    return (
        sorted((dataset_root / "test/bad").glob("*.png"))[:2] + sorted((dataset_root / "test/good").glob("*.png"))[:2]
    )


@pytest.mark.parametrize("export_type", [ExportType.TORCH, ExportType.ONNX, ExportType.OPENVINO])
def test_export(trained: tuple[Engine, EA2D, Path], export_type: ExportType, tmp_path: Path) -> None:
    engine, model, _ = trained
    path = engine.export(model=model, export_type=export_type, export_root=tmp_path)
    assert path is not None
    assert Path(path).is_file()


def _load_images(paths: list[Path]) -> torch.Tensor:
    arrays = [np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255 for path in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def test_openvino_matches_torch(trained: tuple[Engine, EA2D, Path], dataset_root: Path, tmp_path: Path) -> None:
    """OpenVINO FP32 (via anomalib's inferencer) and torch agree within 1e-4 on scores and maps."""
    engine, model, _ = trained
    xml = engine.export(model=model, export_type=ExportType.OPENVINO, export_root=tmp_path)
    assert xml is not None
    images = _load_images(_sample_images(dataset_root))
    model.eval()
    with torch.no_grad():
        expected = model(images)  # pre-processing, EA2D and post-processing, as exported
    inferencer = OpenVINOInferencer(path=xml, device="CPU", config={"INFERENCE_PRECISION_HINT": "f32"})
    for index in range(images.shape[0]):
        result = inferencer.predict(images[index : index + 1])
        np.testing.assert_allclose(
            np.ravel(result.anomaly_map), expected.anomaly_map[index].ravel().numpy(), atol=1e-4, rtol=0
        )
        np.testing.assert_allclose(
            np.ravel(result.pred_score), expected.pred_score[index : index + 1].numpy(), atol=1e-4
        )


def test_openvino_int8_ptq_export_runs(trained: tuple[Engine, EA2D, Path], dataset_root: Path, tmp_path: Path) -> None:
    """Post-training INT8 quantisation (NNCF, calibrated on the datamodule) exports a model that runs."""
    engine, model, _ = trained
    xml = engine.export(
        model=model,
        export_type=ExportType.OPENVINO,
        export_root=tmp_path,
        compression_type=CompressionType.INT8_PTQ,
        datamodule=tiny_folder(dataset_root),
    )
    assert xml is not None
    images = _load_images(_sample_images(dataset_root))
    result = OpenVINOInferencer(path=xml, device="CPU").predict(images[:1])
    assert np.isfinite(np.ravel(result.pred_score)).all()
    assert np.ravel(result.anomaly_map).size == images.shape[-1] * images.shape[-2]
