"""The contrastive (SimSiam) pretext: its views, its loss recomputed by hand, that it trains an encoder, its errors."""

from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F  # noqa: N812

from anomalib_ea2d.models.components.contrastive import SimSiam


def _encoder() -> torch.nn.Module:
    return timm.create_model("resnet18", features_only=True, out_indices=(1, 2, 3), pretrained=False)


def test_views_are_random_images_of_the_same_shape_in_range() -> None:
    torch.manual_seed(0)
    images = torch.rand(5, 3, 48, 40)
    pretext = SimSiam([64, 128, 256])
    first, second = pretext.augment(images), pretext.augment(images)
    assert first.shape == images.shape
    assert first.min() >= 0.0
    assert first.max() <= 1.0
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, images)


def test_a_view_without_crop_or_intensity_change_is_the_image_or_its_mirror() -> None:
    torch.manual_seed(0)
    images = torch.rand(8, 1, 32, 32)
    pretext = SimSiam([64, 128, 256], crop_scale=(1.0, 1.0), contrast=0.0, brightness=0.0, noise=0.0)
    views = pretext.augment(images)
    for view, image in zip(views, images, strict=True):
        same, mirrored = torch.allclose(view, image, atol=1e-5), torch.allclose(view, image.flip(-1), atol=1e-5)
        assert same or mirrored


def test_the_loss_is_the_symmetric_negative_cosine_with_a_stopped_target(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    encoder = _encoder()
    pretext = SimSiam(encoder.feature_info.channels()).eval()
    images = torch.rand(4, 3, 64, 64)
    views = iter([images, images.flip(-1)])
    monkeypatch.setattr(pretext, "augment", lambda _: next(views))
    loss = pretext(encoder, images)

    def project(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = pretext.projector(list(encoder(x))[-1].mean(dim=(-2, -1)))
        return z, pretext.predictor(z)

    def by_hand(stop: bool) -> torch.Tensor:
        (z1, p1), (z2, p2) = project(images), project(images.flip(-1))
        if stop:
            z1, z2 = z1.detach(), z2.detach()
        return -(F.cosine_similarity(p1, z2, dim=-1).mean() + F.cosine_similarity(p2, z1, dim=-1).mean()) / 2

    torch.testing.assert_close(loss, by_hand(stop=True))
    assert -1.0 <= float(loss) <= 1.0

    def projector_grad(value: torch.Tensor) -> torch.Tensor:
        weight = pretext.projector[0].weight
        return torch.autograd.grad(value, weight, retain_graph=True)[0]

    grad = projector_grad(loss)
    torch.testing.assert_close(grad, projector_grad(by_hand(stop=True)))
    assert not torch.allclose(grad, projector_grad(by_hand(stop=False)))  # the targets carry no gradient


def test_the_loss_trains_the_encoder_and_both_heads() -> None:
    torch.manual_seed(0)
    encoder = _encoder()
    pretext = SimSiam(encoder.feature_info.channels())
    before = encoder.conv1.weight.detach().clone()
    optimizer = torch.optim.AdamW([*encoder.parameters(), *pretext.parameters()], lr=1e-3)
    loss = pretext(encoder, torch.rand(4, 3, 64, 64), transform=lambda x: (x - 0.45) / 0.225)
    loss.backward()
    assert encoder.conv1.weight.grad is not None
    assert encoder.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in pretext.predictor.parameters())
    optimizer.step()
    assert not torch.equal(encoder.conv1.weight, before)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop_scale": (0.0, 1.0)}, "crop_scale"),
        ({"crop_scale": (0.9, 0.5)}, "crop_scale"),
        ({"prediction": 0}, "prediction"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimSiam([64, 128, 256], **kwargs)


def test_a_batch_of_one_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        SimSiam([64, 128, 256])(_encoder(), torch.rand(1, 3, 32, 32))
