"""Configuration errors: refused at construction with one clear message, from Python and from the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from anomalib.pre_processing import PreProcessor
from PIL import Image
from torchvision.transforms import v2

from anomalib_ea2d import EA2D, EA2DLoss, EA2DModel
from anomalib_ea2d.data import MedicalFolder, MedicalPredictDataset
from tests.helpers.cli import cli_env
from tests.helpers.engine import cpu_engine

ANOMALIB = str(Path(sys.executable).parent / "anomalib")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "nope"}, r"Unknown EA2D backbone 'nope'; choose one of resnet18, resnet34, resnet50"),
        ({"lr": -1e-3}, r"EA2D lr must be > 0, got -0\.001"),
        ({"lr": 0.0}, r"EA2D lr must be > 0, got 0\.0"),
        ({"encoder_lr": -1.0}, r"EA2D encoder_lr must be >= 0"),
        ({"contrastive_weight": -0.5}, r"contrastive_weight must be >= 0, got -0\.5"),
        ({"view1_weight": -1.0}, r"view1_weight must be >= 0"),
        ({"score_reduction": "median"}, r"score_reduction must be one of \('max', 'mean', 'topk'\), got 'median'"),
        ({"sigma": -1.0}, r"sigma must be >= 0"),
        ({"bn_momentum": 1.5}, r"bn_momentum must be in \[0, 1\], got 1\.5"),
        ({"image_size": 100}, r"EA2D image_size must be positive multiples of 32, got 100"),
        ({"max_steps": 0}, r"EA2D max_steps must be > 0"),
    ],
)
def test_bad_model_arguments_fail_at_construction(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EA2D(**{"backbone": "resnet18", "pre_trained": False, **kwargs})  # type: ignore[arg-type]


def test_torch_model_and_loss_check_their_arguments_too() -> None:
    with pytest.raises(ValueError, match="Unknown EA2D backbone 'resnet101'"):
        EA2DModel(backbone="resnet101", pre_trained=False)
    with pytest.raises(ValueError, match="score_reduction must be one of"):
        EA2DModel(backbone="resnet18", pre_trained=False, score_reduction="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contrastive_weight must be >= 0"):
        EA2DLoss(contrastive_weight=-1.0)


def test_bad_data_arguments_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="intensity_scaling must be one of"):
        MedicalFolder(name="x", root=tmp_path, normal_dir="good", intensity_scaling="percentile")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_bad_image must be one of"):
        MedicalFolder(name="x", root=tmp_path, normal_dir="good", on_bad_image="ignore")  # type: ignore[arg-type]
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "scan.png")
    with pytest.raises(ValueError, match="intensity_scaling must be one of"):
        MedicalPredictDataset(tmp_path, intensity_scaling="z")  # type: ignore[arg-type]


def test_cli_shows_the_message_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    for index in range(2):
        Image.fromarray(np.full((32, 32), 40 * index, np.uint8)).save(tmp_path / "good" / f"{index}.png")
    env = cli_env(OMP_NUM_THREADS="1", COLUMNS="200")
    args = [
        ANOMALIB, "train", "--model", "EA2D", "--model.backbone", "nope", "--model.pre_trained", "false",
        "--data", "anomalib_ea2d.data.MedicalFolder", "--data.name", "cli",
        "--data.root", str(tmp_path), "--data.normal_dir", "good", "--default_root_dir", str(tmp_path / "results"),
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = re.sub(r"\s+", " ", result.stdout + result.stderr)  # the CLI wraps long lines
    assert result.returncode != 0
    assert "Unknown EA2D backbone 'nope'; choose one of resnet18, resnet34, resnet50, wide_resnet50_2." in output
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").rglob("*.ckpt"))


def test_custom_pre_processor_size_not_multiple_of_32_is_named(tmp_path: Path) -> None:
    """A user pre-processor that resizes to 100x100: the first step says what is wrong and how to fix it."""
    for split in ("good", "test"):
        (tmp_path / split).mkdir()
        for index in range(2):
            Image.fromarray(np.full((50, 70), 40 * index + 10, np.uint8)).save(tmp_path / split / f"{index}.png")
    transform = v2.Compose([v2.Resize((100, 100)), v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    model = EA2D(backbone="resnet18", pre_trained=False, pre_processor=PreProcessor(transform=transform))
    datamodule = MedicalFolder(
        name="size", root=tmp_path, normal_dir="good", normal_test_dir="test", num_workers=0, train_batch_size=2
    )
    engine = cpu_engine(tmp_path / "results", max_steps=1)
    with pytest.raises(ValueError, match=r"multiples of 32, got 100x100; resize the images .*image_size"):
        engine.fit(model=model, datamodule=datamodule)
