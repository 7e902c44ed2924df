"""Region of interest: the foreground mask, score reductions inside it, and EA2D's maps limited to it."""

from __future__ import annotations

import pytest
import torch

from anomalib_ea2d import EA2D
from anomalib_ea2d.callbacks.roi import Foreground, foreground_for, input_normalization
from anomalib_ea2d.models.components.score_reduction import reduce_map
from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _normalise(raw: torch.Tensor) -> torch.Tensor:
    return (raw - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def _disk_with_hole(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A bright disk (radius 20) on black with a dark 3x3 hole inside; returns raw [1,3,H,W] and the disk."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disk = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) <= 20**2
    raw = disk.float() * 0.6
    raw[30:33, 30:33] = 0.0
    return raw.expand(1, 3, size, size).clone(), disk


def test_foreground_fills_holes_and_erodes_the_rim() -> None:
    raw, disk = _disk_with_hole()
    plain = Foreground(threshold=0.05, closing=0, erosion=0)(_normalise(raw))[0, 0].bool()
    assert not plain[31, 31]  # the hole is below the threshold
    closed = Foreground(threshold=0.05, closing=2, erosion=0)(_normalise(raw))[0, 0].bool()
    assert torch.equal(closed, disk)  # closing fills the 3x3 hole and leaves the convex disk as it is
    eroded = Foreground(threshold=0.05, closing=2, erosion=3)(_normalise(raw))[0, 0].bool()
    # erosion by a (2r+1)-square: a pixel stays iff every pixel within Chebyshev distance 3 is in the disk
    padded = torch.nn.functional.pad(disk.float(), (3, 3, 3, 3))
    expected = torch.stack([padded[dy : dy + 64, dx : dx + 64] for dy in range(7) for dx in range(7)]).amin(0).bool()
    assert torch.equal(eroded, expected)
    assert eroded.sum() < disk.sum()


def test_input_normalization_is_read_from_the_ea2d_pre_processor() -> None:
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=64)
    mean, std = input_normalization(model.pre_processor)
    assert mean == pytest.approx(MEAN)
    assert std == pytest.approx(STD)
    assert foreground_for(model, None) is None
    with pytest.raises(ValueError, match="Unknown ROI settings"):
        foreground_for(model, {"radius": 3})


def test_reductions_inside_the_roi() -> None:
    values = torch.arange(16.0).view(1, 1, 4, 4)
    roi = torch.zeros(1, 1, 4, 4)
    roi[..., :2, :] = 1.0  # values 0..7 inside
    assert reduce_map(values, "max", roi=roi).item() == 7.0
    assert reduce_map(values, "mean", roi=roi).item() == pytest.approx(sum(range(8)) / 8)
    # top 25 % of 16 cells = 4 cells: inside the ROI the highest are 7, 6, 5, 4
    assert reduce_map(values, "topk", top_k_fraction=0.25, roi=roi).item() == pytest.approx((7 + 6 + 5 + 4) / 4)
    assert reduce_map(values, "topk", top_k_fraction=0.25).item() == pytest.approx((15 + 14 + 13 + 12) / 4)


def test_ea2d_maps_are_zero_outside_the_roi_and_scores_come_from_inside() -> None:
    torch.manual_seed(0)
    raw, _ = _disk_with_hole()
    images = _normalise(raw + 0.05 * torch.rand_like(raw) * (raw > 0))
    roi_module = Foreground(threshold=0.05, closing=2, erosion=2)
    model = EA2DModel(backbone="resnet18", pre_trained=False, roi=roi_module).eval()
    plain = EA2DModel(backbone="resnet18", pre_trained=False).eval()
    plain.load_state_dict(model.state_dict())  # the ROI adds nothing to the state dict
    with torch.no_grad():
        out, ref = model(images), plain(images)
    roi = roi_module(images)
    assert roi.sum() > 0
    assert (roi == 0).sum() > 0
    assert torch.all(out.anomaly_map[roi == 0] == 0)
    torch.testing.assert_close(out.anomaly_map[roi == 1], ref.anomaly_map[roi == 1])
    assert out.pred_score.item() <= ref.pred_score.item()  # max over a subset of cells


def test_region_of_interest_callback_sets_ea2d_roi_once() -> None:
    from anomalib_ea2d import RegionOfInterest  # noqa: PLC0415

    module = EA2D(backbone="resnet18", pre_trained=False, image_size=64)
    assert module.model.roi_foreground is None
    callback = RegionOfInterest(threshold=0.1, closing=1, erosion=0)
    callback.apply(module)
    first = module.model.roi_foreground
    assert isinstance(first, Foreground)
    assert first.threshold == 0.1
    assert not module.model._forward_hooks
    callback.apply(module)
    assert module.model.roi_foreground is first
    raw, _ = _disk_with_hole()
    module.eval()
    with torch.no_grad():
        out = module.model(_normalise(raw))
    assert torch.all(out.anomaly_map[first(_normalise(raw)) == 0] == 0)


def test_a_module_with_its_own_roi_gets_the_foreground_through_the_hook_and_no_forward_hook() -> None:
    from lightning.pytorch import LightningModule  # noqa: PLC0415

    from anomalib_ea2d.callbacks.roi import AppliesRegionOfInterest, RegionOfInterest  # noqa: PLC0415

    class OwnROI(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = torch.nn.Identity()
            self.received: list[Foreground] = []

        def set_region_of_interest(self, foreground: Foreground) -> None:
            self.received.append(foreground)
            self.model.roi_foreground = foreground

    module, plain = OwnROI(), LightningModule()
    plain.model = torch.nn.Identity()
    assert isinstance(module, AppliesRegionOfInterest)
    assert not isinstance(plain, AppliesRegionOfInterest)
    callback = RegionOfInterest()
    callback.apply(module)
    callback.apply(module)  # the module has its ROI now: left alone
    assert len(module.received) == 1
    assert not module.model._forward_hooks
    callback.apply(plain)  # any other model: the callback's own hook
    assert isinstance(plain.model.roi_foreground, Foreground)
    assert len(plain.model._forward_hooks) == 1
