"""Region of interest and the operating point through anomalib's Engine, for EA2D and PatchCore.

Tiny data: textured disks on a black background (the foreground is known), anomalies inside the
disk. A callback looks at the models during validation and test: anomaly maps are zero outside the
ROI, and the post-processor's thresholds flag the target fraction of *normal* validation images
and pixels. The exported ONNX and OpenVINO graphs (ROI inside them) match torch within 1e-4.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import pytest
import torch
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from anomalib.models import Patchcore
from lightning.pytorch import Callback, LightningModule, Trainer
from PIL import Image

from anomalib_ea2d import EA2D, RegionOfInterest, SpecificityPostProcessor
from anomalib_ea2d.callbacks.roi import Foreground
from tests.helpers.engine import cpu_engine
from tests.helpers.ranking import average_precision, f1
from tests.helpers.recorder import TestRecorder
from tests.helpers.tiny_data import make_tiny_disk_dataset, tiny_folder

SIZE = 64
ROI = {"threshold": 0.05, "closing": 2, "erosion": 1}
IMAGE_FPR, PIXEL_FPR = 0.25, 0.1


class Inspector(Callback):
    """Record normal validation scores/pixels and check the raw maps against the ROI (runs before post-processing)."""

    def __init__(self) -> None:
        self.normal_scores: list[torch.Tensor] = []
        self.normal_pixels: list[torch.Tensor] = []
        self.checked_pixels = {"outside": 0, "inside": 0}

    def _check(self, pl_module: LightningModule, outputs: Any) -> None:
        foreground = pl_module.model.roi_foreground
        assert isinstance(foreground, Foreground)
        roi = foreground(outputs.image).squeeze(1).bool()
        anomaly_map = outputs.anomaly_map.reshape(roi.shape)
        assert torch.all(anomaly_map[~roi] == 0)
        self.checked_pixels["outside"] += int((~roi).sum())
        self.checked_pixels["inside"] += int(roi.sum())

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module  # the thresholds come from the last validation only
        self.normal_scores, self.normal_pixels = [], []

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:
        del trainer, args
        normal = ~outputs.gt_label.bool()
        self.normal_scores.append(outputs.pred_score[normal].detach().flatten())
        self.normal_pixels.append(outputs.anomaly_map[normal].detach().flatten())
        self._check(pl_module, outputs)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any) -> None:
        del trainer, args
        self._check(pl_module, outputs)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_disk_dataset(tmp_path_factory.mktemp("disks"), size=SIZE)


def _fit_and_test(model: LightningModule, root: Path, out: Path, callbacks: list[Callback]) -> tuple[Engine, dict]:
    torch.manual_seed(0)
    engine = cpu_engine(out, max_steps=3, callbacks=callbacks)
    engine.fit(model=model, datamodule=tiny_folder(root))
    (results,) = engine.test(model=model, datamodule=tiny_folder(root))
    return engine, results


def _assert_operating_point(post: SpecificityPostProcessor, inspector: Inspector) -> None:
    scores = torch.cat(inspector.normal_scores)
    pixels = torch.cat(inspector.normal_pixels)
    assert scores.numel() >= 4  # enough normal validation images for a non-trivial fraction
    image_threshold, pixel_threshold = float(post.image_threshold), float(post.pixel_threshold)
    assert int((scores > image_threshold).sum()) == math.floor(IMAGE_FPR * scores.numel())
    # ties (the zeros outside the ROI) can only make fewer pixels exceed the threshold, never more
    allowed = math.floor(PIXEL_FPR * pixels.numel())
    assert int((pixels > pixel_threshold).sum()) <= allowed < int((pixels >= pixel_threshold).sum())


def _assert_metrics_recomputed(results: dict[str, float], recorder: TestRecorder) -> None:
    """Ranking metrics from the raw scores, operating-point metrics from the thresholded labels, by hand."""
    labels, predicted = recorder.column("gt_label").astype(bool), recorder.column("pred_label").astype(bool)
    scores = torch.cat(recorder.raw_scores).numpy()
    assert results["image_AUROC"] == pytest.approx(recorder.image_auroc(), abs=1e-6)
    assert results["pixel_AUROC"] == pytest.approx(recorder.pixel_auroc(), abs=1e-5)
    assert results["image_AveragePrecision"] == pytest.approx(
        average_precision(scores[~labels].tolist(), scores[labels].tolist()), abs=1e-6
    )
    assert results["image_Sensitivity"] == pytest.approx(predicted[labels].mean(), abs=1e-6)
    assert results["image_Specificity"] == pytest.approx((~predicted[~labels]).mean(), abs=1e-6)
    masks = recorder.column("gt_mask").astype(bool)
    assert results["pixel_Dice"] == pytest.approx(f1(recorder.column("pred_mask"), masks), abs=1e-5)
    assert results["pixel_Dice"] <= results["pixel_BestDice"] + 1e-6


def _images(root: Path) -> torch.Tensor:
    paths = sorted((root / "test/bad").glob("*.png"))[:2] + sorted((root / "test/good").glob("*.png"))[:2]
    arrays = [np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255 for path in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def _assert_exports_match_torch(
    engine: Engine, model: LightningModule, root: Path, tmp_path: Path, export_types: tuple[ExportType, ...]
) -> None:
    images = _images(root)
    model.eval()
    with torch.no_grad():
        expected = model(images)  # pre-processing, model with ROI, post-processing: what is exported
    core = ov.Core()
    for export_type in export_types:
        path = engine.export(model=model, export_type=export_type, export_root=tmp_path / export_type.value)
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        result = compiled(images.numpy())
        outputs = {next(iter(port.names)): value for port, value in result.items()}
        np.testing.assert_allclose(outputs["pred_score"].ravel(), expected.pred_score.numpy().ravel(), atol=1e-4)
        np.testing.assert_allclose(outputs["anomaly_map"].ravel(), expected.anomaly_map.numpy().ravel(), atol=1e-4)


def test_ea2d_roi_and_operating_point_through_engine(dataset_root: Path, tmp_path: Path) -> None:
    model = EA2D(
        backbone="resnet18",
        pre_trained=False,
        image_size=SIZE,
        roi=ROI,
        metrics="medical",
        post_processor=SpecificityPostProcessor(image_fpr=IMAGE_FPR, pixel_fpr=PIXEL_FPR),
    )
    inspector, recorder = Inspector(), TestRecorder()
    engine, results = _fit_and_test(model, dataset_root, tmp_path, [inspector, recorder])
    assert inspector.checked_pixels["outside"] > 0
    assert inspector.checked_pixels["inside"] > 0
    _assert_operating_point(model.post_processor, inspector)
    _assert_metrics_recomputed(results, recorder)
    _assert_exports_match_torch(engine, model, dataset_root, tmp_path, (ExportType.ONNX, ExportType.OPENVINO))


def test_patchcore_with_region_of_interest_callback(dataset_root: Path, tmp_path: Path) -> None:
    model = Patchcore(
        backbone="resnet18",
        pre_trained=False,
        coreset_sampling_ratio=0.5,
        pre_processor=Patchcore.configure_pre_processor(image_size=(SIZE, SIZE)),
        post_processor=SpecificityPostProcessor(image_fpr=IMAGE_FPR, pixel_fpr=PIXEL_FPR),
    )
    inspector, recorder = Inspector(), TestRecorder()
    engine, results = _fit_and_test(model, dataset_root, tmp_path, [RegionOfInterest(**ROI), inspector, recorder])
    assert inspector.checked_pixels["outside"] > 0
    _assert_operating_point(model.post_processor, inspector)
    # anomalib's own evaluator, given our post-processor, ranks the raw scores
    assert results["image_AUROC"] == pytest.approx(recorder.image_auroc(), abs=1e-6)
    assert results["pixel_AUROC"] == pytest.approx(recorder.pixel_auroc(), abs=1e-5)
    # the hook is traced into the export made in the same process
    _assert_exports_match_torch(engine, model, dataset_root, tmp_path, (ExportType.OPENVINO,))
