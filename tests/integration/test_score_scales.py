"""Ranking metrics from unclipped scores, for any anomalib model, through anomalib's ``Engine``.

A stand-in anomalib model scores each image by its mean brightness, so every score is known. The
validation set holds dim normal images only (the medical setting); several test images, normal and
abnormal, are far brighter, so anomalib's post-processor clips their normalised scores to 1.0 and
AUROC computed on them ties where the model did not. With the project's evaluator, or with its
post-processor, the logged image and pixel AUROC/AP must be those of the raw scores, computed here
by hand; with anomalib's own evaluator and post-processor they are those of the clipped scores (the
control that shows the data exercises the clipping).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib import LearningType
from anomalib.data import Folder, InferenceBatch
from anomalib.engine import Engine
from anomalib.models.components import AnomalibModule
from PIL import Image
from torch import nn

from anomalib_ea2d.metrics.evaluator import RawScoreEvaluator, medical_evaluator
from anomalib_ea2d.post_processing.specificity_post_processor import SpecificityPostProcessor
from tests.helpers.ranking import auroc, average_precision

TRAIN = [30 + 2 * i for i in range(16)]  # half of them validate: every validation score is <= 60
TEST_NORMAL = [35, 40, 45, 50, 100, 120, 140, 160]
TEST_ABNORMAL = [90, 110, 130, 150, 170, 190]


class _MeanBrightness(nn.Module):
    def forward(self, image: torch.Tensor) -> InferenceBatch:
        anomaly_map = image.mean(dim=1, keepdim=True)
        return InferenceBatch(pred_score=anomaly_map.flatten(1).mean(dim=1), anomaly_map=anomaly_map)


class Brightness(AnomalibModule):
    """An anomalib model without training whose score is the image's mean brightness."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(visualizer=False, **kwargs)  # type: ignore[arg-type]
        self.model = _MeanBrightness()
        self.unused = nn.Parameter(torch.zeros(1))

    def training_step(self, batch: object, *args: object) -> torch.Tensor:
        return self.unused.sum() * 0.0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self.unused], lr=0.0)

    def validation_step(self, batch: object, *args: object) -> object:
        return batch.update(**self.model(batch.image)._asdict())  # type: ignore[attr-defined]

    @property
    def trainer_arguments(self) -> dict[str, object]:
        return {"num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        return LearningType.ONE_CLASS


def _write(root: Path) -> Path:
    for folder, values in (("train/good", TRAIN), ("test/good", TEST_NORMAL), ("test/bad", TEST_ABNORMAL)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for value in values:
            Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(root / folder / f"{value:03d}.png")
    (root / "ground_truth/bad").mkdir(parents=True)
    for value in TEST_ABNORMAL:
        Image.fromarray(np.full((32, 32), 255, np.uint8)).save(root / "ground_truth/bad" / f"{value:03d}.png")
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("brightness"))


def _test(model: AnomalibModule, root: Path, tmp_path: Path) -> tuple[dict[str, float], AnomalibModule]:
    datamodule = Folder(
        name="brightness",
        root=root,
        normal_dir="train/good",
        normal_test_dir="test/good",
        abnormal_dir="test/bad",
        mask_dir="ground_truth/bad",
        train_batch_size=4,
        eval_batch_size=3,  # batches mix clipped and unclipped scores
        num_workers=0,
        val_split_mode="from_train",
        val_split_ratio=0.5,
        test_split_mode="from_dir",
        seed=0,
    )
    engine = Engine(default_root_dir=tmp_path, max_epochs=1, logger=False, enable_progress_bar=False)
    engine.fit(model=model, datamodule=datamodule)
    (metrics,) = engine.test(model=model, datamodule=datamodule)
    return metrics, model


def _expected(model: AnomalibModule) -> tuple[float, float]:
    """AUROC of the raw brightness and of anomalib's clipped normalisation of it (same model statistics)."""
    raw = auroc([v / 255 for v in TEST_NORMAL], [v / 255 for v in TEST_ABNORMAL])
    post = model.post_processor

    def clipped(value: int) -> float:
        score = model.model(model.pre_processor(torch.full((1, 3, 32, 32), value / 255)))[0]
        return float(post._normalize(score, post.image_min, post.image_max, post.image_threshold))

    return raw, auroc([clipped(v) for v in TEST_NORMAL], [clipped(v) for v in TEST_ABNORMAL])


@pytest.mark.parametrize(
    "components",
    [
        pytest.param({"evaluator": medical_evaluator()}, id="our-evaluator"),
        pytest.param({"post_processor": SpecificityPostProcessor()}, id="our-post-processor"),
    ],
)
def test_logged_auroc_is_the_auroc_of_the_raw_scores(
    data_root: Path, tmp_path: Path, components: dict[str, object]
) -> None:
    metrics, model = _test(Brightness(**components), data_root, tmp_path)
    raw, clipped = _expected(model)
    assert raw != pytest.approx(clipped, abs=0.01)  # the data really makes clipping tie scores
    assert isinstance(model.evaluator, RawScoreEvaluator)
    assert metrics["image_AUROC"] == pytest.approx(raw, abs=1e-6)
    # Every abnormal image is all lesion and the maps are constant: pixel AUROC is the image one.
    assert metrics["pixel_AUROC"] == pytest.approx(raw, abs=1e-6)
    if "image_AveragePrecision" in metrics:  # the medical metric set
        expected_ap = average_precision(TEST_NORMAL, TEST_ABNORMAL)
        assert metrics["image_AveragePrecision"] == pytest.approx(expected_ap, abs=1e-6)
        assert metrics["pixel_AveragePrecision"] == pytest.approx(expected_ap, abs=1e-6)


def test_anomalib_defaults_rank_clipped_scores(data_root: Path, tmp_path: Path) -> None:
    """The control: anomalib's own evaluator and post-processor see the clipped scores."""
    metrics, model = _test(Brightness(), data_root, tmp_path)
    raw, clipped = _expected(model)
    assert not isinstance(model.evaluator, RawScoreEvaluator)
    assert metrics["image_AUROC"] == pytest.approx(clipped, abs=1e-6)
    assert metrics["image_AUROC"] != pytest.approx(raw, abs=0.01)
