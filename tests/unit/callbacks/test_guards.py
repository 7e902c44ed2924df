"""The numerics guards (``callbacks.guards``): NaN/Inf stops training with its step, leaving no NaN weights."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import Callback, seed_everything
from torchvision import tv_tensors
from torchvision.transforms import v2

from anomalib_ea2d import EA2D, EA2DLoss, EA2DModel
from anomalib_ea2d.data import MedicalFolder
from tests.helpers.engine import cpu_engine
from tests.helpers.images import write_png16
from tests.helpers.tiny_data import medical_folder

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
        for index in range(4):
            write_png16(root / split / f"{index}.png", rng.integers(10000, 50000, (IMAGE_SIZE, IMAGE_SIZE)))
    return root


def _datamodule(root: Path, **kwargs: object) -> MedicalFolder:
    return medical_folder(root, "numerics", val_split_mode="same_as_test", **kwargs)


def _assert_finite(state: dict[str, torch.Tensor], where: str) -> None:
    for name, tensor in state.items():
        if tensor.is_floating_point() and "post_processor" not in name:  # thresholds stay NaN without validation
            assert torch.isfinite(tensor).all(), f"{where}: {name}"


def _saved(engine: Engine, root: Path) -> list[Path]:
    """The checkpoints a run under ``root`` wrote; its checkpoint callback does write under ``root``."""
    assert Path(engine.trainer.checkpoint_callback.dirpath).is_relative_to(root)
    return sorted(root.rglob("*.ckpt"))


def _load(checkpoint: Path) -> dict:
    return torch.load(checkpoint, weights_only=True)


def _engine(root: Path, max_steps: int, limit_val_batches: int | None = 0) -> Engine:
    return cpu_engine(root, max_steps=max_steps, limit_val_batches=limit_val_batches)


def _float_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in module.state_dict().items() if value.is_floating_point()}


def _nan_input_run(tmp_path: Path) -> tuple[EA2D, Engine, dict[str, torch.Tensor]]:
    """Train on NaN images; the model, the engine and the torch model's float state before training."""
    seed_everything(0)
    poison = v2.Lambda(lambda image: image * float("nan"), tv_tensors.Image)
    datamodule = _datamodule(_dataset(tmp_path / "data"), train_augmentations=poison)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    before = _float_state(model.model)
    engine = _engine(tmp_path / "run", max_steps=3)
    with pytest.raises(FloatingPointError, match=r"EA2D loss became nan at step 0.*check the input images"):
        engine.fit(model=model, datamodule=datamodule)
    return model, engine, before


def test_nan_input_stops_training_at_once(tmp_path: Path) -> None:
    """Stopped in the first step, before the first epoch ends: no checkpoint at all."""
    _, engine, _ = _nan_input_run(tmp_path)
    assert engine.trainer.global_step == 0
    assert _saved(engine, tmp_path / "run") == []


def test_nan_input_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    """The failed forward pass leaves no NaN BatchNorm statistics: weights and statistics are the initial ones."""
    model, _, before = _nan_input_run(tmp_path)
    _assert_finite(model.state_dict(), "in memory")
    after = _float_state(model.model)
    assert after.keys() == before.keys()
    for name, value in after.items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=name)


def test_diverging_learning_rate_stops_with_the_step(tmp_path: Path) -> None:
    """A huge lr overflows the BatchNorm statistics (while the loss may still be finite) and then the loss."""
    seed_everything(0)
    datamodule = _datamodule(_dataset(tmp_path / "data"))
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE, lr=1e6, encoder_lr=1e6)
    engine = _engine(tmp_path / "run", max_steps=10)
    with pytest.raises(FloatingPointError, match=DIVERGED) as stopped:
        engine.fit(model=model, datamodule=datamodule)
    step = int(re.search(r"at step (\d+)", str(stopped.value)).group(1))
    _assert_finite(model.state_dict(), "in memory")
    # One step per epoch: the checkpoint of the last epoch before the divergence, with finite weights ...
    checkpoints = _saved(engine, tmp_path / "run")
    assert [path.name for path in checkpoints] == ["model.ckpt"], checkpoints
    saved = _load(checkpoints[0])
    assert saved["global_step"] == step
    _assert_finite(saved["state_dict"], "checkpoint")
    # ... which are the weights in memory: the diverged step stopped before its optimizer step.
    weights = dict(model.named_parameters())
    assert {name for name in saved["state_dict"] if name.startswith("model.")} >= weights.keys()
    for name, value in weights.items():
        torch.testing.assert_close(saved["state_dict"][name], value.detach(), rtol=0, atol=0, msg=name)


def test_non_finite_gradient_stops_before_the_optimizer_step(tmp_path: Path) -> None:
    """A finite loss with an Inf gradient (e.g. a 0/0 inside a custom loss term) must not reach the weights."""
    seed_everything(0)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    weight = model.model.branches[0].attention_e2.gamma
    weight.register_hook(lambda grad: grad + float("inf"))
    before = {k: v.clone() for k, v in model.model.state_dict().items() if v.is_floating_point()}
    engine = _engine(tmp_path / "run", max_steps=3)
    with pytest.raises(FloatingPointError, match=r"gradients became NaN/Inf at step 0"):
        engine.fit(model=model, datamodule=_datamodule(_dataset(tmp_path / "data")))
    for name, value in model.model.named_parameters():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0, msg=name)
    assert _saved(engine, tmp_path / "run") == []  # stopped in the first step, before any epoch ended


class _LearningRateJump(Callback):
    """From training step ``at_step`` on, every parameter group's learning rate is ``lr``."""

    def __init__(self, at_step: int, lr: float) -> None:
        self.at_step, self.lr = at_step, lr

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at_step:
            for group in trainer.optimizers[0].param_groups:
                group["lr"] = self.lr


def test_diverging_run_with_validation_leaves_no_nan_checkpoint(tmp_path: Path) -> None:
    """Validation after every step: a diverged model's NaN scores must stop the run before any NaN is saved.

    The first step trains with the default lr (validated, calibrated, saved); from the second on the lr
    is 1e6. Without the guard on the validation scores, the second validation would fit NaN thresholds
    and normalisation and save them (weights still finite: the checkpoint guard lets them through).
    """
    seed_everything(0)
    datamodule = _datamodule(_dataset(tmp_path / "data"))
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    engine = cpu_engine(tmp_path / "run", max_steps=10, callbacks=[_LearningRateJump(at_step=1, lr=1e6)])
    with pytest.raises(
        FloatingPointError, match=rf"{DIVERGED[: -len('; .*Lower lr')]}|validation scores became NaN/Inf at step 2"
    ):
        engine.fit(model=model, datamodule=datamodule)
    checkpoints = _saved(engine, tmp_path / "run")
    assert [path.name for path in checkpoints] == ["model.ckpt"], checkpoints
    saved = _load(checkpoints[0])
    assert saved["global_step"] == 1  # the validated step before the jump, not the diverged one
    state = saved["state_dict"]
    thresholds = [name for name in state if name.startswith("post_processor.")]
    assert thresholds, "the checkpoint holds no post-processing statistics"
    for name, tensor in state.items():  # validated before saving: thresholds and normalisation are real numbers
        if tensor.is_floating_point() and not name.endswith("pixel_threshold"):  # no masks: never calibrated
            assert torch.isfinite(tensor).all(), f"{checkpoints[0].name}: {name}"
    # Nor were the model's own thresholds recomputed from the NaN scores.
    assert torch.isfinite(model.post_processor.image_threshold)
    torch.testing.assert_close(model.post_processor.image_threshold, state["post_processor._image_threshold"])


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
    from anomalib_ea2d.models.image.ea2d.checkpoint import CheckpointFormatError  # noqa: PLC0415

    seed_everything(0)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)
    engine = _engine(tmp_path / "run", max_steps=1)
    engine.fit(model=model, datamodule=_datamodule(_dataset(tmp_path / "data")))
    healthy = tmp_path / "healthy.ckpt"
    engine.trainer.save_checkpoint(healthy)
    good = model.model.encoder.conv1.weight.detach().clone()
    with torch.no_grad():
        model.model.encoder.conv1.weight[0, 0, 0, 0] = float("inf")
    target = tmp_path / "poisoned.ckpt"
    with pytest.raises(CheckpointFormatError, match=r"refused to write a checkpoint.*model\.encoder\.conv1\.weight"):
        engine.trainer.save_checkpoint(target)
    assert not target.exists()
    # Nor is an existing checkpoint overwritten by the refused one: it keeps the healthy weights.
    with pytest.raises(CheckpointFormatError, match=r"refused to write a checkpoint"):
        engine.trainer.save_checkpoint(healthy)
    state = _load(healthy)["state_dict"]
    _assert_finite(state, healthy.name)
    torch.testing.assert_close(state["model.encoder.conv1.weight"], good, rtol=0, atol=0)
