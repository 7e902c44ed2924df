"""The ROI and the ``topk`` score reduction export to ONNX (dynamic input size) and run the same in OpenVINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import torch
from torch import nn

from anomalib_ea2d.anomaly_map import reduce_map
from anomalib_ea2d.roi import Foreground


class _MaskedTopK(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.roi = Foreground(threshold=0.3, closing=1, erosion=1, mean=(0.5,), std=(0.25,))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        roi = self.roi(images)
        anomaly_map = images.square().mean(dim=1, keepdim=True) * roi
        return anomaly_map, reduce_map(anomaly_map, "topk", top_k_fraction=0.05, roi=roi)


def test_roi_and_topk_export_match_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = _MaskedTopK().eval()
    images = torch.randn(2, 3, 32, 32)
    images[..., :12] = -2.0  # raw intensity 0: background
    path = tmp_path / "masked_topk.onnx"
    torch.onnx.export(module, (images,), path, dynamo=True, input_names=["images"])
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    with torch.no_grad():
        expected = module(images)
    result = compiled(images.numpy())
    for index, reference in enumerate(expected):
        np.testing.assert_allclose(result[index], reference.numpy(), atol=1e-5)
    assert float(expected[0].eq(0).float().mean()) > 0.1  # the ROI masked something
