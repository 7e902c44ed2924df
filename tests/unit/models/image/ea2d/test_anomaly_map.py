"""Anomaly maps and image scores of EA2D, from hand-made encoder/decoder features with planted anomalies."""

from __future__ import annotations

import pytest
import torch

from anomalib_ea2d import EA2DModel
from anomalib_ea2d.models.image.ea2d.anomaly_map import AnomalyMapGenerator, rotate180, view_anomaly_map

# Three scales at strides 4/8/16 of a 64 x 64 image.
SHAPES = [(8, 16, 16), (16, 8, 8), (32, 4, 4)]
IMAGE = (64, 64)


def _encoder(batch: int = 1, seed: int = 0, shapes: list[tuple[int, int, int]] = SHAPES) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *shape, generator=generator) for shape in shapes]


def _fail_at(encoder: list[torch.Tensor], rows: slice, cols: slice) -> list[torch.Tensor]:
    """Reconstructions equal to the encoder maps except in one region of the finest grid, where they are negated.

    ``rows``/``cols`` index the finest (stride 4) grid; coarser scales negate the cells covering it.
    """
    finest = encoder[0].shape[-1]
    decoded = []
    for e in encoder:
        factor = finest // e.shape[-1]
        d = e.clone()
        r = slice(rows.start // factor, -(-rows.stop // factor))
        c = slice(cols.start // factor, -(-cols.stop // factor))
        d[..., r, c] = -d[..., r, c]
        decoded.append(d)
    return decoded


def _one_minus_cos_by_hand(e: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    e, d = e.double(), d.double()
    return 1.0 - (e * d).sum(1, keepdim=True) / (e.norm(dim=1, keepdim=True) * d.norm(dim=1, keepdim=True))


def _bilinear_by_hand(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Separable bilinear resize with half-pixel centres and edge clamping."""

    def axis(t: torch.Tensor, out: int, dim: int) -> torch.Tensor:
        n = t.shape[dim]
        src = ((torch.arange(out, dtype=torch.float64) + 0.5) * n / out - 0.5).clamp(min=0)
        low = src.floor().long().clamp(max=n - 1)
        high = (low + 1).clamp(max=n - 1)
        w = src - low
        shape = [1] * t.ndim
        shape[dim] = out
        w = w.view(shape)
        return t.index_select(dim, low) * (1 - w) + t.index_select(dim, high) * w

    return axis(axis(x.double(), size[0], -2), size[1], -1)


def test_rotate180_maps_top_left_to_bottom_right() -> None:
    x = torch.zeros(1, 1, 4, 6)
    x[..., 0, 0] = 1
    rotated = rotate180(x)
    assert rotated[..., 3, 5].item() == 1
    assert rotated.sum().item() == 1
    assert torch.equal(rotate180(rotated), x)


def test_view_map_is_mean_over_scales_of_channel_cosine_with_nearest_upsampling() -> None:
    encoder = _encoder(batch=2)
    decoder = _encoder(batch=2, seed=1)
    expected = sum(
        _one_minus_cos_by_hand(e, d).repeat_interleave(16 // e.shape[-1], -2).repeat_interleave(16 // e.shape[-1], -1)
        for e, d in zip(encoder, decoder, strict=True)
    ) / len(encoder)
    actual = view_anomaly_map(encoder, decoder)
    assert actual.shape == (2, 1, 16, 16)
    torch.testing.assert_close(actual.double(), expected, rtol=1e-5, atol=1e-6)


def test_coarse_scale_failure_fills_a_sharp_block() -> None:
    encoder = _encoder()
    decoder = [e.clone() for e in encoder]
    decoder[2][..., 1, 2] = -decoder[2][..., 1, 2]  # one stride-16 cell
    view_map = view_anomaly_map(encoder, decoder)[0, 0]
    block = view_map[4:8, 8:12]
    # Nearest upsampling: the cell becomes a constant 4 x 4 block of 2 / 3 and nothing leaks outside it.
    torch.testing.assert_close(block, torch.full((4, 4), 2 / 3))
    outside = view_map.clone()
    outside[4:8, 8:12] = 0
    assert outside.abs().max() < 1e-6


def test_second_view_map_is_rotated_back_into_the_image_frame() -> None:
    encoder1, encoder2 = _encoder(seed=0), _encoder(seed=1)
    # The image's top-left 4 x 4 feature cells fail in view 1, and the same image region, which
    # lies bottom-right in the rotated view 2, fails there.
    decoder1 = _fail_at(encoder1, slice(0, 4), slice(0, 4))
    decoder2 = _fail_at(encoder2, slice(12, 16), slice(12, 16))
    anomaly_map, score = AnomalyMapGenerator()(encoder1, decoder1, encoder2, decoder2, IMAGE)
    assert anomaly_map.shape == (1, 1, *IMAGE)
    flat_index = int(anomaly_map.flatten().argmax())
    row, col = divmod(flat_index, IMAGE[1])
    assert row < 16
    assert col < 16
    # Both views agree on the corner, so the combined map reaches the full per-view value there.
    torch.testing.assert_close(anomaly_map[0, 0, 0, 0], torch.tensor(2.0))
    for corner in (anomaly_map[0, 0, -1, -1], anomaly_map[0, 0, 0, -1], anomaly_map[0, 0, -1, 0]):
        assert corner.abs() < 1e-5
    torch.testing.assert_close(score, torch.tensor([2.0]))


def test_max_score_is_mean_of_per_view_maxima_not_max_of_combined_map() -> None:
    encoder1, encoder2 = _encoder(seed=0), _encoder(seed=1)
    # Both views fail top-left in their own frames, i.e. at opposite image corners.
    decoder1 = _fail_at(encoder1, slice(0, 4), slice(0, 4))
    decoder2 = _fail_at(encoder2, slice(0, 4), slice(0, 4))
    anomaly_map, score = AnomalyMapGenerator("max")(encoder1, decoder1, encoder2, decoder2, IMAGE)
    assert anomaly_map.max() < 1.0 + 1e-5  # each corner seen by one view only
    torch.testing.assert_close(score, torch.tensor([2.0]))


@pytest.mark.parametrize("reduction", ["max", "mean"])
def test_score_reduction_at_feature_resolution(reduction: str) -> None:
    encoder1, encoder2 = _encoder(batch=3, seed=0), _encoder(batch=3, seed=1)
    decoder1, decoder2 = _encoder(batch=3, seed=2), _encoder(batch=3, seed=3)
    _, score = AnomalyMapGenerator(reduction)(encoder1, decoder1, encoder2, decoder2, IMAGE)
    per_view = [view_anomaly_map(encoder1, decoder1), view_anomaly_map(encoder2, decoder2)]
    reduce = (lambda m: m.flatten(1).amax(1)) if reduction == "max" else (lambda m: m.flatten(1).mean(1))
    assert score.shape == (3,)
    torch.testing.assert_close(score, (reduce(per_view[0]) + reduce(per_view[1])) / 2)


@pytest.mark.parametrize(("features", "size"), [((16, 16), (64, 64)), ((16, 24), (64, 96)), ((8, 8), (13, 29))])
def test_combined_map_is_bilinearly_resized_to_the_image(features: tuple[int, int], size: tuple[int, int]) -> None:
    h, w = features
    shapes = [(8, h, w), (16, h // 2, w // 2), (32, h // 4, w // 4)]
    encoder1, encoder2 = _encoder(shapes=shapes), _encoder(seed=1, shapes=shapes)
    decoder1, decoder2 = _encoder(seed=2, shapes=shapes), _encoder(seed=3, shapes=shapes)
    anomaly_map, _ = AnomalyMapGenerator()(encoder1, decoder1, encoder2, decoder2, torch.Size(size))
    combined = (view_anomaly_map(encoder1, decoder1) + rotate180(view_anomaly_map(encoder2, decoder2))) / 2
    assert anomaly_map.shape == (1, 1, *size)
    torch.testing.assert_close(anomaly_map.double(), _bilinear_by_hand(combined, size), rtol=1e-5, atol=1e-6)


def test_sigma_smooths_the_map_but_not_the_score() -> None:
    encoder1, encoder2 = _encoder(seed=0), _encoder(seed=1)
    # A central failure, away from the borders, so smoothing only spreads it.
    decoder1 = _fail_at(encoder1, slice(6, 10), slice(6, 10))
    decoder2 = _fail_at(encoder2, slice(6, 10), slice(6, 10))
    sharp, sharp_score = AnomalyMapGenerator(sigma=0.0)(encoder1, decoder1, encoder2, decoder2, IMAGE)
    smooth, smooth_score = AnomalyMapGenerator(sigma=4.0)(encoder1, decoder1, encoder2, decoder2, IMAGE)
    assert smooth.shape == sharp.shape
    assert smooth.max() < sharp.max() - 0.1
    torch.testing.assert_close(smooth.mean(), sharp.mean(), rtol=1e-2, atol=0)
    torch.testing.assert_close(smooth_score, sharp_score)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match="sigma"):
        AnomalyMapGenerator(sigma=-1.0)
    with pytest.raises(ValueError, match="'median'"):
        AnomalyMapGenerator(score_reduction="median")  # type: ignore[arg-type]


def test_model_map_is_in_the_image_frame_end_to_end() -> None:
    """With both branches sharing weights, the model's map of a rotated image is the rotated map.

    map(x) = (M(x) + rot(M(rot x))) / 2 for the per-view map function M, so then
    map(rot x) = rot(map(x)) exactly; a second view left in its rotated frame breaks the identity.
    """
    torch.manual_seed(0)
    model = EA2DModel(backbone="resnet18", pre_trained=False)
    with torch.no_grad():
        for branch in model.branches:
            branch.attention_e2.gamma.fill_(0.3)
            branch.attention_e3.gamma.fill_(0.3)
    model.branches[1].load_state_dict(model.branches[0].state_dict())
    model.eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        output = model(images)
        rotated_output = model(rotate180(images))
    torch.testing.assert_close(rotated_output.anomaly_map, rotate180(output.anomaly_map), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rotated_output.pred_score, output.pred_score, rtol=1e-4, atol=1e-5)
    # The identity is not trivial: the map is not rotation symmetric by itself.
    assert not torch.allclose(output.anomaly_map, rotate180(output.anomaly_map), atol=1e-3)
