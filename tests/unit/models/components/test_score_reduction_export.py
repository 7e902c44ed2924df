"""The ROI and the ``topk`` score reduction export to ONNX (dynamic input size) and run the same in OpenVINO."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch
from torch import nn
from torch.export import Dim

from anomalib_ea2d.callbacks.roi import Foreground
from anomalib_ea2d.models.components.score_reduction import reduce_map

EXPORT_SHAPE = (2, 3, 32, 32)
SHAPES = [
    EXPORT_SHAPE,
    (1, 3, 48, 40),  # topk averages round(0.05 * 1920) = 96 cells
    (3, 3, 64, 24),  # 76.8 -> 77 cells
    (2, 3, 10, 25),  # 12.5 -> 13 cells (rounded half up, in torch as in the export)
]


class _MaskedTopK(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.roi = Foreground(threshold=0.3, closing=1, erosion=1, mean=(0.5,), std=(0.25,))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        roi = self.roi(images)
        anomaly_map = images.square().mean(dim=1, keepdim=True) * roi
        return anomaly_map, reduce_map(anomaly_map, "topk", top_k_fraction=0.05, roi=roi)


def _images(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    images = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    images[..., : shape[-1] // 3] = -2.0  # raw intensity 0: background on the left third
    return images


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, ov.CompiledModel]:
    """The module, and its ONNX export with dynamic batch, height and width compiled by OpenVINO."""
    module = _MaskedTopK().eval()
    path = tmp_path_factory.mktemp("export") / "masked_topk.onnx"
    dynamic = {0: Dim("batch", max=64), 2: Dim("height", min=8, max=1024), 3: Dim("width", min=8, max=1024)}
    torch.onnx.export(
        module, (_images(EXPORT_SHAPE, 0),), path, dynamo=True, input_names=["images"], dynamic_shapes=(dynamic,)
    )
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return module, compiled


def test_the_export_has_a_dynamic_input_size(exported: tuple[nn.Module, ov.CompiledModel]) -> None:
    _, compiled = exported
    shape = compiled.inputs[0].get_partial_shape()
    assert shape[1].get_length() == 3
    assert all(shape[axis].is_dynamic for axis in (0, 2, 3)), shape


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: "x".join(map(str, shape)))
def test_roi_and_topk_export_match_torch_at_each_input_size(
    exported: tuple[nn.Module, ov.CompiledModel], shape: tuple[int, ...]
) -> None:
    module, compiled = exported
    images = _images(shape, seed=sum(shape))
    with torch.no_grad():
        expected = module(images)
    result = compiled(images.numpy())
    anomaly_map, score = result[0], result[1]
    assert anomaly_map.shape == (shape[0], 1, *shape[2:])
    assert score.shape == (shape[0],)
    np.testing.assert_allclose(anomaly_map, expected[0].numpy(), rtol=0, atol=1e-4)
    np.testing.assert_allclose(score, expected[1].numpy(), rtol=0, atol=1e-4)
    assert float(expected[0].eq(0).float().mean()) > 0.1  # the ROI masked something
