"""BatchNorm folding (components/fusion.py, EA2DModel.fuse) and the eval paths under export and torch.compile."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from anomalib_ea2d import EA2DLoss, EA2DModel
from anomalib_ea2d.models.components.fusion import conv_batchnorm_pairs, fold_batchnorms_

TOL = 1e-5

EVAL_PATHS: dict[str, Callable[[EA2DModel], EA2DModel]] = {
    "plain": lambda model: model.eval(),
    "fused_channels_last": lambda model: model.fuse(),
}


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and attention gains, so that folding mistakes show."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, low, high in (
                    (module.running_mean, -0.2, 0.2),
                    (module.running_var, 0.5, 2.0),
                    (module.weight, 0.5, 1.5),
                    (module.bias, -0.2, 0.2),
                ):
                    tensor.copy_(torch.empty(tensor.shape).uniform_(low, high, generator=generator))
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.5)
    return model


def _batchnorms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@pytest.fixture(scope="module")
def model() -> EA2DModel:
    torch.manual_seed(0)
    return _randomise(EA2DModel(backbone="resnet18", pre_trained=False)).eval()


def _assert_same(actual: object, expected: object) -> None:
    torch.testing.assert_close(actual.pred_score, expected.pred_score, atol=TOL, rtol=0)
    torch.testing.assert_close(actual.anomaly_map, expected.anomaly_map, atol=TOL, rtol=0)


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_every_batchnorm_of_ea2d_has_its_convolution(backbone: str) -> None:
    model = EA2DModel(backbone=backbone, pre_trained=False)
    pairs = conv_batchnorm_pairs(model)
    assert len(pairs) == _batchnorms(model) > 0
    assert all(isinstance(getattr(parent, conv), nn.Conv2d) for parent, conv, _ in pairs)


def test_frozen_encoder_batchnorms_are_folded_too() -> None:
    torch.manual_seed(0)
    model = EA2DModel(backbone="resnet18", pre_trained=False, freeze_encoder_bn=True).eval()
    fused = model.fuse()
    assert not [m for m in fused.modules() if "BatchNorm" in type(m).__name__]
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _assert_same(fused(images), model(images))


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 64, 96)])
def test_fuse_returns_an_eval_copy_with_the_same_outputs(model: EA2DModel, shape: tuple[int, ...]) -> None:
    before = _batchnorms(model)
    fused = model.fuse(channels_last=False)
    assert fused is not model
    assert fused.is_fused
    assert not model.is_fused
    assert not fused.training
    assert _batchnorms(fused) == 0
    assert _batchnorms(model) == before  # the original keeps its BatchNorms
    images = torch.randn(shape)
    with torch.no_grad():
        _assert_same(fused(images), model(images))
        _assert_same(model.fuse()(images), model(images))
    assert model.fuse().encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not fused.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)


def test_a_fused_copy_keeps_the_weights_it_was_fused_from(model: EA2DModel) -> None:
    source = copy.deepcopy(model)
    fused = source.fuse()
    with torch.no_grad():
        source.branches[1].decoder.layer1[0].bn1.running_var.mul_(3.0)
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _assert_same(source.fuse()(images), source(images))
        stale, fresh = fused(images), source(images)
    assert not torch.allclose(stale.anomaly_map, fresh.anomaly_map, atol=TOL)


def test_a_fused_model_refuses_to_train(model: EA2DModel) -> None:
    fused = model.fuse().train()
    with pytest.raises(RuntimeError, match=r"fused for inference by EA2DModel\.fuse\(\).*train the model it was fused"):
        fused(torch.randn(2, 3, 64, 64))


def test_eval_loss_of_the_fused_model_matches(model: EA2DModel) -> None:
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = EA2DLoss()(model.features(images))
        actual = EA2DLoss()(model.fuse().features(images))
    torch.testing.assert_close(actual, expected, atol=0, rtol=1e-5)


def test_folding_needs_eval_mode() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"eval mode; call \.eval\(\)"):
        fold_batchnorms_(net)


@pytest.mark.parametrize(
    ("middle", "folded"),
    [(nn.Identity(), 1), (nn.Upsample(scale_factor=2, mode="bilinear"), 1), (nn.ReLU(), 0), (nn.MaxPool2d(2), 0)],
)
def test_only_layers_that_commute_with_the_batchnorm_may_sit_between(middle: nn.Module, folded: int) -> None:
    net = _randomise(nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), middle, nn.BatchNorm2d(4))).eval()
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = net(images)
        assert fold_batchnorms_(net) == folded
        torch.testing.assert_close(net(images), expected, atol=1e-6, rtol=0)


class _Scores(nn.Module):
    """EA2DModel's eval outputs as a tuple of tensors (what exporters take)."""

    def __init__(self, inner: EA2DModel) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.inner(images)
        return output.pred_score, output.anomaly_map


@pytest.mark.parametrize("path", EVAL_PATHS)
def test_eval_paths_export(model: EA2DModel, path: str) -> None:
    """torch.export (what anomalib's ONNX/OpenVINO export runs on) traces each eval path to the same outputs."""
    network = EVAL_PATHS[path](model)
    images = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(_Scores(network), (images,), strict=False)
    batch_norms = [node for node in exported.graph.nodes if "batch_norm" in str(node.target)]
    assert bool(batch_norms) == (path == "plain")
    with torch.no_grad():
        expected = model(images)
        score, anomaly_map = exported.module()(images)
    torch.testing.assert_close(score, expected.pred_score, atol=TOL, rtol=0)
    torch.testing.assert_close(anomaly_map, expected.anomaly_map, atol=TOL, rtol=0)


@pytest.mark.parametrize("path", EVAL_PATHS)
def test_eval_paths_compile(model: EA2DModel, path: str) -> None:
    """torch.compile (graph capture and AOT tracing; backend aot_eager keeps the test free of C++ builds)."""
    network = EVAL_PATHS[path](model)
    compiled = torch.compile(network, backend="aot_eager", fullgraph=True)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        _assert_same(compiled(images), model(images))
