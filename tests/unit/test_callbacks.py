"""Contrastive-augmentation callback: second views, jitter, warm-up and its hand-over to the model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from anomalib_ea2d import ContrastiveAugmentation, EA2DLoss, EA2DModel
from anomalib_ea2d.anomaly_map import rotate180
from anomalib_ea2d.callbacks import VIEW_TRANSFORMS


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


def test_callback_drives_the_model_during_fit_and_restores_it() -> None:
    model = EA2DModel(backbone="resnet18", pre_trained=False, freeze_encoder_bn=True)
    module = SimpleNamespace(model=model, loss=EA2DLoss(contrastive_weight=0.5), log=lambda *a, **k: None)
    callback = ContrastiveAugmentation(transforms=["hflip"], warmup_steps=4)
    callback.on_fit_start(SimpleNamespace(), module)
    assert model.second_view is callback
    callback.on_train_batch_start(SimpleNamespace(global_step=2), module, None, 0)
    assert module.loss.contrastive_weight == pytest.approx(0.25)
    images = torch.randn(2, 3, 64, 64)
    model.train()
    with torch.no_grad():
        features = model.features(images)
        # The encoder's BatchNorms are frozen, so the second view's encoding is that of the flipped image.
        expected = model.encoder(torch.flip(images, (-1,)))[0]
    torch.testing.assert_close(features.encoder[1][0], expected)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.features(images).encoder[1][0], model.encoder(rotate180(images))[0])
    callback.on_fit_end(SimpleNamespace(), module)
    assert model.second_view is rotate180
    assert module.loss.contrastive_weight == pytest.approx(0.5)


def test_state_dict_round_trip_reproduces_draws() -> None:
    callback = ContrastiveAugmentation(transforms=["rot180", "hflip", "vflip"], intensity_jitter=0.2, seed=1)
    images = torch.randn(2, 3, 32, 32)
    callback(images)
    state = callback.state_dict()
    expected = [callback(images) for _ in range(5)]
    restored = ContrastiveAugmentation(transforms=["rot180", "hflip", "vflip"], intensity_jitter=0.2, seed=99)
    restored.load_state_dict(state)
    assert all(torch.equal(a, restored(images)) for a in expected)
