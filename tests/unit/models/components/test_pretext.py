"""The synthetic-anomaly segmentation pretext: where it pastes, what it leaves alone, and that it trains an encoder."""

from __future__ import annotations

import pytest
import timm
import torch

from anomalib_ea2d.models.components.pretext import SyntheticAnomalySegmentation


def _brains(batch: int = 6, size: int = 64) -> torch.Tensor:
    """Bright discs on a black background: a foreground the masks must stay inside."""
    grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")).float()
    disc = ((grid - size / 2).pow(2).sum(0) < (size / 3) ** 2).float()
    texture = torch.rand(batch, 3, size, size) * 0.5 + 0.3
    return texture * disc


def _encoder() -> torch.nn.Module:
    return timm.create_model("resnet18", features_only=True, out_indices=(1, 2, 3), pretrained=False)


@pytest.mark.parametrize("textures", [("noise",), ("foreign",), ("noise", "foreign")])
def test_anomalies_stay_in_the_foreground_and_leave_the_rest_unchanged(textures: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    images = _brains()
    pretext = SyntheticAnomalySegmentation([64, 128, 256], textures=textures, probability=1.0)
    augmented, masks = pretext.synthesize(images)
    foreground = images.mean(dim=1, keepdim=True) > 0.05
    assert masks.shape == (6, 1, 64, 64)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert not (masks.bool() & ~foreground).any()
    assert (masks.flatten(1).sum(1) > 0).sum() >= 5  # nearly every image got one (a mask can miss the disc)
    untouched = (masks == 0).expand_as(images)
    torch.testing.assert_close(augmented[untouched], images[untouched])
    assert not torch.equal(augmented[~untouched], images[~untouched])


def test_without_a_foreground_threshold_masks_may_cover_the_background() -> None:
    torch.manual_seed(0)
    images = torch.zeros(4, 3, 64, 64)
    _, masks = SyntheticAnomalySegmentation([64, 128, 256], probability=1.0, foreground_threshold=None).synthesize(
        images
    )
    assert masks.sum() > 0
    _, masks = SyntheticAnomalySegmentation([64, 128, 256], probability=1.0).synthesize(images)
    assert masks.sum() == 0


def test_the_loss_trains_the_encoder() -> None:
    torch.manual_seed(0)
    encoder = _encoder()
    pretext = SyntheticAnomalySegmentation(encoder.feature_info.channels())
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    optimizer = torch.optim.AdamW([*encoder.parameters(), *pretext.parameters()], lr=1e-3)
    loss = pretext(encoder, _brains(), transform=lambda x: (x - 0.45) / 0.225)
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert encoder.conv1.weight.grad is not None
    assert encoder.conv1.weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(encoder.state_dict()["conv1.weight"], before["conv1.weight"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"textures": ("ellipsoid",)}, "textures"),
        ({"textures": ()}, "textures"),
        ({"probability": 0.0}, "probability"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticAnomalySegmentation([64, 128, 256], **kwargs)
