"""Per-position map standardisation: statistics, application, checkpoints and export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from anomalib_ea2d.models.image.ea2d.components.standardization import STD_FLOOR, MapStandardizer
from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel


def _maps(seed: int, count: int = 30, views: int = 2, size: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    position_mean = torch.rand(views, size, size, generator=generator) * 2
    return position_mean + 0.3 * torch.rand(count, views, size, size, generator=generator)


def test_statistics_are_the_per_position_mean_and_std_whatever_the_batch_split() -> None:
    maps = _maps(0)
    standardizer = MapStandardizer(num_views=2)
    for part in maps.split(7):  # uneven batches
        standardizer.update(part)
    standardizer.finish()
    torch.testing.assert_close(standardizer.mean.squeeze(1), maps.mean(0), rtol=1e-5, atol=1e-6)
    expected_std = maps.double().std(0).float()
    floor = float(expected_std.mean()) * STD_FLOOR
    torch.testing.assert_close(standardizer.std.squeeze(1), expected_std.clamp(min=floor), rtol=1e-4, atol=1e-6)


def test_standardised_map_is_the_positive_z_score() -> None:
    maps = _maps(1)
    standardizer = MapStandardizer(num_views=2)
    standardizer.update(maps)
    standardizer.finish()
    new = _maps(2, count=3)[:, 1:2]  # view 1
    out = standardizer(new, view=1)
    by_hand = ((new - standardizer.mean[1]) / standardizer.std[1]).clamp(min=0)
    torch.testing.assert_close(out, by_hand)
    assert out.min() >= 0
    # A position that is high on every normal map is not anomalous: the mean map itself scores 0.
    assert float(standardizer(standardizer.mean[1:2], view=1).abs().max()) == 0.0


def test_a_constant_position_does_not_divide_by_zero() -> None:
    maps = _maps(3)
    maps[:, :, 0, 0] = 5.0  # never varies (e.g. background)
    standardizer = MapStandardizer(num_views=2)
    standardizer.update(maps)
    standardizer.finish()
    assert torch.isfinite(standardizer(maps[:2, :1], view=0)).all()
    assert float(standardizer.std[:, 0, 0, 0].min()) > 0


def test_misuse_says_what_to_do() -> None:
    standardizer = MapStandardizer(num_views=2)
    with pytest.raises(RuntimeError, match="never fitted; train the model"):
        standardizer(torch.rand(1, 1, 4, 4), view=0)
    with pytest.raises(ValueError, match=r"expects \[B, 2, h, w\]"):
        standardizer.update(torch.rand(3, 1, 4, 4))
    with pytest.raises(ValueError, match="at least 2 normal images"):
        standardizer.finish()
    standardizer.update(torch.rand(3, 2, 4, 4))
    with pytest.raises(ValueError, match="another size"):
        standardizer.update(torch.rand(3, 2, 8, 8))
    standardizer.reset()
    standardizer.update(torch.rand(3, 2, 4, 4))
    standardizer.finish()
    with pytest.raises(ValueError, match="image size the model was trained with"):
        standardizer(torch.rand(1, 1, 8, 8), view=0)


def _fitted_model(seed: int = 0) -> tuple[EA2DModel, torch.Tensor]:
    torch.manual_seed(seed)
    model = EA2DModel(backbone="resnet18", pre_trained=False, standardize_maps=True).eval()
    normal = torch.randn(6, 3, 64, 64)
    assert model.fit_map_statistics(normal.split(4)) == 6
    return model, normal


def test_model_maps_are_standardised_views_and_fitting_keeps_the_mode() -> None:
    model, normal = _fitted_model()
    images = torch.randn(2, 3, 64, 64)
    plain = EA2DModel(backbone="resnet18", pre_trained=False).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "standardizer" not in k})
    with torch.no_grad():
        raw = plain.view_maps(images)
        standardised = model(images)
        reference = plain(images)
    generator = model.anomaly_map_generator
    z1, z2 = generator.standardize(raw[:, :1], 0), generator.standardize(raw[:, 1:], 1)
    torch.testing.assert_close(standardised.pred_score, (z1.flatten(1).amax(1) + z2.flatten(1).amax(1)) / 2)
    assert not torch.allclose(standardised.pred_score, reference.pred_score)
    model.train()
    model.fit_map_statistics([normal])
    assert model.training  # restored


def test_statistics_travel_in_the_state_dict_to_an_unfitted_model() -> None:
    model, _ = _fitted_model()
    fresh = EA2DModel(backbone="resnet18", pre_trained=False, standardize_maps=True).eval()
    assert not fresh.map_standardizer.fitted
    fresh.load_state_dict(model.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh(images).anomaly_map, model(images).anomaly_map)


def test_fused_and_exported_models_standardise_like_torch(tmp_path: Path) -> None:
    model, _ = _fitted_model()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(images)
        fused = model.fuse()(images)
    torch.testing.assert_close(fused.pred_score, expected.pred_score, rtol=1e-4, atol=1e-4)
    path = tmp_path / "standardised.onnx"
    torch.onnx.export(model, (images,), path, dynamo=True, input_names=["images"])
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(images.numpy())
    outputs = {tuple(value.shape): value for value in result.values()}
    np.testing.assert_allclose(outputs[tuple(expected.anomaly_map.shape)], expected.anomaly_map.numpy(), atol=1e-4)
    np.testing.assert_allclose(outputs[tuple(expected.pred_score.shape)], expected.pred_score.numpy(), atol=1e-4)
