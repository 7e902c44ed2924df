"""Contrastive-augmentation callback: second views, jitter, warm-up and its hand-over to the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, seed_everything

from anomalib_ea2d import EA2D, ContrastiveAugmentation
from anomalib_ea2d.models.image.ea2d.anomaly_map import rotate180
from anomalib_ea2d.models.image.ea2d.callbacks import VIEW_TRANSFORMS
from tests.helpers.engine import cpu_engine
from tests.helpers.tiny_data import FOLDER_ARGS, make_tiny_folder_dataset, tiny_folder

IMAGE_SIZE = 64
TERMS = ("recon_view1", "recon_view2", "contrastive")


def test_default_is_the_papers_rotation() -> None:
    images = torch.randn(2, 3, 64, 64)
    assert torch.equal(ContrastiveAugmentation()(images), torch.rot90(images, 2, (2, 3)))


@pytest.mark.parametrize("name", sorted(VIEW_TRANSFORMS))
def test_each_transform_is_a_permutation_of_pixels(name: str) -> None:
    images = torch.randn(1, 3, 32, 32)
    view = ContrastiveAugmentation(transforms=[name])(images)
    assert view.shape == images.shape
    torch.testing.assert_close(view.flatten().sort().values, images.flatten().sort().values)
    if name != "rot180":
        assert not torch.equal(view, rotate180(images))


def test_random_choice_uses_every_transform_and_is_seeded() -> None:
    images = torch.arange(16.0).reshape(1, 1, 4, 4)
    first = ContrastiveAugmentation(transforms=["rot180", "hflip", "vflip"], seed=3)
    second = ContrastiveAugmentation(transforms=["rot180", "hflip", "vflip"], seed=3)
    views_a = [first(images) for _ in range(30)]
    views_b = [second(images) for _ in range(30)]
    assert all(torch.equal(a, b) for a, b in zip(views_a, views_b, strict=True))
    distinct = {tuple(v.flatten().tolist()) for v in views_a}
    assert len(distinct) == 3


def test_intensity_jitter_changes_only_contrast_and_offset() -> None:
    images = torch.randn(4, 3, 32, 32)
    view = ContrastiveAugmentation(intensity_jitter=0.3, seed=0)(images)
    rotated = rotate180(images)
    for index in range(4):
        # An affine map per image: view = a * rotated + b with a in [0.7, 1.3], b in [-0.3, 0.3].
        x, y = rotated[index].flatten(), view[index].flatten()
        slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
        offset = y.mean() - slope * x.mean()
        torch.testing.assert_close(y, slope * x + offset, atol=1e-4, rtol=0)
        assert 0.7 <= slope <= 1.3
        assert -0.3 <= offset <= 0.3
    assert not torch.allclose(view, rotated)


def test_rot90_on_non_square_images_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="square"):
        ContrastiveAugmentation(transforms=["rot90"])(torch.randn(1, 3, 32, 64))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transforms": ["spin"]},
        {"transforms": []},
        {"intensity_jitter": -0.1},
        {"contrastive_weight": -1},
        {"warmup_steps": -5},
    ],
)
def test_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ContrastiveAugmentation"):
        ContrastiveAugmentation(**kwargs)


def test_warmup_ramps_the_weight_linearly() -> None:
    callback = ContrastiveAugmentation(warmup_steps=10)
    assert [callback.weight_at(step, 0.5) for step in (0, 5, 10, 20)] == [0.0, 0.25, 0.5, 0.5]


def _views(inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image view and second view from the encoder's inputs of one step (one batched call, or one call each)."""
    if len(inputs) == 1:
        half = inputs[0].shape[0] // 2
        return inputs[0][:half], inputs[0][half:]
    assert len(inputs) == 2, f"the encoder ran {len(inputs)} times in one step"
    return inputs[0], inputs[1]


class _ContrastiveProbe(Callback):
    """Per training step: the model's second view, the loss's contrastive weight, the loss and its
    logged terms, and the two views the encoder was given; per validation batch: the two views."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.validation_views: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._inputs: list[torch.Tensor] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        self._handle = pl_module.model.encoder.register_forward_pre_hook(
            lambda module, args: self._inputs.append(args[0].detach().clone())
        )

    def on_fit_end(self, trainer, pl_module) -> None:
        self._handle.remove()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._inputs = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        terms = {name: float(trainer.callback_metrics[f"train_{name}"]) for name in TERMS}
        self.steps.append(
            {
                "second_view": pl_module.model.second_view,
                "weight": pl_module.loss.contrastive_weight,
                "loss": float(outputs["loss"]),
                "terms": terms,
                "views": _views(self._inputs),
            }
        )

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._inputs = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.validation_views.append(_views(self._inputs))


@pytest.mark.usefixtures("one_thread")
def test_callback_drives_the_model_during_fit_and_restores_it(tmp_path: Path) -> None:
    """In a real ``Engine.fit``: the drawn view is what the encoder sees and the warm-up weight is what the
    loss is made of, step by step; validation keeps the 180-degree view; after fit the model is as before."""
    seed_everything(0)
    root = make_tiny_folder_dataset(tmp_path / "data", size=IMAGE_SIZE)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE, freeze_encoder_bn=True)
    assert model.loss.contrastive_weight == pytest.approx(0.5)
    callback = ContrastiveAugmentation(transforms=["hflip"], warmup_steps=4)
    probe = _ContrastiveProbe()
    engine = cpu_engine(tmp_path / "run", max_steps=5, callbacks=[callback, probe])
    engine.fit(model=model, datamodule=tiny_folder(root))

    # Warm-up from 0 to the model's 0.5 over 4 steps, then the full weight.
    expected_weights = [0.0, 0.125, 0.25, 0.375, 0.5]
    assert [step["weight"] for step in probe.steps] == pytest.approx(expected_weights)
    for index, (step, weight) in enumerate(zip(probe.steps, expected_weights, strict=True)):
        assert step["second_view"] is callback, index
        terms = step["terms"]
        total = 0.5 * terms["recon_view1"] + 0.5 * terms["recon_view2"] + weight * terms["contrastive"]
        assert step["loss"] == pytest.approx(total, rel=1e-5), index  # the loss optimised used that weight
        assert terms["contrastive"] > 0, index
        image, second = step["views"]
        assert image.shape[0] == FOLDER_ARGS["train_batch_size"]
        torch.testing.assert_close(second, torch.flip(image, (-1,)), rtol=0, atol=0, msg=f"step {index}")

    # Validation inside fit scores with the fixed 180-degree view, whatever the callback draws.
    assert probe.validation_views, "the run must validate"
    for image, second in probe.validation_views:
        torch.testing.assert_close(second, rotate180(image), rtol=0, atol=0)

    assert model.model.second_view is rotate180
    assert model.loss.contrastive_weight == pytest.approx(0.5)


def test_state_dict_round_trip_reproduces_draws() -> None:
    callback = ContrastiveAugmentation(transforms=["rot180", "hflip", "vflip"], intensity_jitter=0.2, seed=1)
    images = torch.randn(2, 3, 32, 32)
    callback(images)
    state = callback.state_dict()
    expected = [callback(images) for _ in range(5)]
    restored = ContrastiveAugmentation(transforms=["rot180", "hflip", "vflip"], intensity_jitter=0.2, seed=99)
    restored.load_state_dict(state)
    assert all(torch.equal(a, restored(images)) for a in expected)
