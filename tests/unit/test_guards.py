"""The numerics guards (anomalib_ea2d.guards): NaN/Inf stops training with its step, leaving no NaN weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import seed_everything
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from anomalib_ea2d import EA2D, EA2DLoss, EA2DModel
from anomalib_ea2d.data.medical_folder import MedicalFolder

IMAGE_SIZE = 32
DIVERGED = r"EA2D (loss became (nan|inf|-inf)|BatchNorm statistics became NaN/Inf) at step [1-9]\d*; .*Lower lr"

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> EA2DModel:
    torch.manual_seed(0)
    return EA2DModel(backbone="resnet18", pre_trained=False)


def _normalised(pixels: torch.Tensor) -> torch.Tensor:
    """What the default pre-processor makes of ``[0, 1]`` pixels."""
    return (pixels - IMAGENET_MEAN) / IMAGENET_STD


@pytest.mark.parametrize(
    ("name", "images"),
    [
        ("all-zero tensor", torch.zeros(2, 3, 64, 64)),
        ("black image", _normalised(torch.zeros(2, 3, 64, 64))),
        ("white image", _normalised(torch.ones(2, 3, 64, 64))),
        ("constant gray", _normalised(torch.full((2, 3, 64, 64), 0.37))),
        ("huge constant", torch.full((2, 3, 64, 64), 1e4)),
    ],
)
def test_degenerate_inputs_give_finite_scores_maps_and_loss(model: EA2DModel, name: str, images: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        output = model(images)
        assert torch.isfinite(output.pred_score).all(), name
        assert torch.isfinite(output.anomaly_map).all(), name
        assert output.anomaly_map.shape == (2, 1, 64, 64)
    model.train()
    loss = EA2DLoss()(model(images))
    assert torch.isfinite(loss), name
    model.eval()


def _dataset(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test_good", "test_bad"):
        (root / split).mkdir(parents=True)
        for index in range(4):
            pixels = rng.integers(10000, 50000, (IMAGE_SIZE, IMAGE_SIZE)).astype(np.uint16)
            Image.fromarray(pixels).save(root / split / f"{index}.png")
    return root


def _datamodule(root: Path, **kwargs: object) -> MedicalFolder:
    return MedicalFolder(
        name="numerics",
        root=root,
        normal_dir="train",
        normal_test_dir="test_good",
        abnormal_dir="test_bad",
        train_batch_size=4,
        eval_batch_size=4,
        num_workers=0,
        val_split_mode="same_as_test",
        **kwargs,  # type: ignore[arg-type]
    )


def _assert_finite(state: dict[str, torch.Tensor], where: str) -> None:
    for name, tensor in state.items():
        if tensor.is_floating_point() and "post_processor" not in name:  # thresholds stay NaN without validation
            assert torch.isfinite(tensor).all(), f"{where}: {name}"


def _assert_no_nan_saved(root: Path) -> None:
    for checkpoint in root.rglob("*.ckpt"):
        _assert_finite(torch.load(checkpoint, weights_only=True)["state_dict"], checkpoint.name)


def _engine(root: Path, max_steps: int, limit_val_batches: int | None = 0) -> Engine:
    return Engine(
        default_root_dir=root,
        max_steps=max_steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=limit_val_batches,
    )


def _nan_input_run(tmp_path: Path) -> EA2D:
    seed_everything(0)
    poison = v2.Lambda(lambda image: image * float("nan"), tv_tensors.Image)
    datamodule = _datamodule(_dataset(tmp_path / "data"), train_augmentations=poison)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    with pytest.raises(FloatingPointError, match=r"EA2D loss became nan at step 0.*check the input images"):
        _engine(tmp_path / "run", max_steps=3).fit(model=model, datamodule=datamodule)
    return model


def test_nan_input_stops_training_at_once(tmp_path: Path) -> None:
    _nan_input_run(tmp_path)
    _assert_no_nan_saved(tmp_path / "run")


def test_nan_input_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    """The failed forward pass must not leave NaN BatchNorm statistics in the model object."""
    model = _nan_input_run(tmp_path)
    _assert_finite(model.state_dict(), "in memory")


def test_diverging_learning_rate_stops_with_the_step(tmp_path: Path) -> None:
    """A huge lr overflows the BatchNorm statistics (while the loss may still be finite) and then the loss."""
    seed_everything(0)
    datamodule = _datamodule(_dataset(tmp_path / "data"))
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE, lr=1e6, encoder_lr=1e6)
    with pytest.raises(FloatingPointError, match=DIVERGED):
        _engine(tmp_path / "run", max_steps=10).fit(model=model, datamodule=datamodule)
    assert list((tmp_path / "run").rglob("*.ckpt")), "expected the checkpoints of the steps before the divergence"
    _assert_no_nan_saved(tmp_path / "run")
    _assert_finite(model.state_dict(), "in memory")


def test_non_finite_gradient_stops_before_the_optimizer_step(tmp_path: Path) -> None:
    """A finite loss with an Inf gradient (e.g. a 0/0 inside a custom loss term) must not reach the weights."""
    seed_everything(0)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    weight = model.model.branches[0].attention_e2.gamma
    weight.register_hook(lambda grad: grad + float("inf"))
    before = {k: v.clone() for k, v in model.model.state_dict().items() if v.is_floating_point()}
    with pytest.raises(FloatingPointError, match=r"gradients became NaN/Inf at step 0"):
        _engine(tmp_path / "run", max_steps=3).fit(model=model, datamodule=_datamodule(_dataset(tmp_path / "data")))
    for name, value in model.model.named_parameters():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=name)
    _assert_no_nan_saved(tmp_path / "run")


def test_diverging_run_with_validation_leaves_no_nan_checkpoint(tmp_path: Path) -> None:
    """Validation after every step: a diverged model's NaN scores must stop the run before any NaN is saved."""
    seed_everything(0)
    datamodule = _datamodule(_dataset(tmp_path / "data"))
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE, lr=1e6, encoder_lr=1e6)
    engine = Engine(
        default_root_dir=tmp_path / "run",
        max_steps=10,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(
        FloatingPointError, match=rf"{DIVERGED[: -len('; .*Lower lr')]}|validation scores became NaN/Inf"
    ):
        engine.fit(model=model, datamodule=datamodule)
    checkpoints = list((tmp_path / "run").rglob("*.ckpt"))
    for checkpoint in checkpoints:  # validated before saving: thresholds and normalisation must be real numbers
        state = torch.load(checkpoint, weights_only=True)["state_dict"]
        for name, tensor in state.items():
            if tensor.is_floating_point():
                assert torch.isfinite(tensor).all(), f"{checkpoint.name}: {name}"


def test_testing_a_checkpoint_with_nan_weights_stops_with_a_clear_message(tmp_path: Path) -> None:
    seed_everything(0)
    datamodule = _datamodule(_dataset(tmp_path / "data"))
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    engine = _engine(tmp_path / "run", max_steps=1, limit_val_batches=None)  # validated: calibrated
    engine.fit(model=model, datamodule=datamodule)
    with torch.no_grad():
        model.model.branches[0].decoder.layer1[0].conv1.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"scores or anomaly maps are NaN/Inf.*retrain"):
        engine.test(model=model, datamodule=datamodule)


def test_a_checkpoint_with_nan_weights_is_not_written(tmp_path: Path) -> None:
    from anomalib_ea2d.checkpoint import CheckpointFormatError  # noqa: PLC0415

    seed_everything(0)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    engine = _engine(tmp_path / "run", max_steps=1)
    engine.fit(model=model, datamodule=_datamodule(_dataset(tmp_path / "data")))
    with torch.no_grad():
        model.model.encoder.conv1.weight[0, 0, 0, 0] = float("inf")
    target = tmp_path / "poisoned.ckpt"
    with pytest.raises(CheckpointFormatError, match=r"refused to write a checkpoint.*model\.encoder\.conv1\.weight"):
        engine.trainer.save_checkpoint(target)
    assert not target.exists()
