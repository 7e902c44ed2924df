"""The eval-mode fast path (BatchNorm folding, channels-last) against the plain modules."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from anomalib_ea2d import EA2DLoss, EA2DModel
from anomalib_ea2d.components import fusion
from anomalib_ea2d.components.fusion import ConvBatchNorm2d, fold_batchnorms

TOL = 1e-5


def _randomise(model: EA2DModel, seed: int = 0) -> EA2DModel:
    """Non-trivial BatchNorm statistics and attention gammas, so that folding mistakes show."""
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


def _both_paths(model: EA2DModel, images: torch.Tensor) -> tuple:
    model.eval()
    with torch.no_grad():
        fast = model(images)
        model.fast_inference = False
        plain = model(images)
        model.fast_inference = True
    return fast, plain


@pytest.fixture(scope="module")
def model() -> EA2DModel:
    torch.manual_seed(0)
    return _randomise(EA2DModel(backbone="resnet18", pre_trained=False))


def _assert_same(fast, plain) -> None:
    torch.testing.assert_close(fast.pred_score, plain.pred_score, atol=TOL, rtol=0)
    torch.testing.assert_close(fast.anomaly_map, plain.anomaly_map, atol=TOL, rtol=0)
    assert fast.anomaly_map.is_contiguous()


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 64, 96)])
def test_fast_path_matches_plain_modules(model: EA2DModel, shape: tuple[int, ...]) -> None:
    _assert_same(*_both_paths(model, torch.randn(shape)))


def test_every_batchnorm_after_a_conv_is_folded(model: EA2DModel) -> None:
    graph, folded = fold_batchnorms(model.encoder)
    batchnorms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert folded == len(batchnorms)
    # The graph shares the encoder's parameters instead of copying them.
    shared = {id(p) for p in graph.parameters()}
    assert shared <= {id(p) for p in model.encoder.parameters()}


def test_fast_path_follows_weight_updates(model: EA2DModel) -> None:
    images = torch.randn(1, 3, 64, 64)
    _both_paths(model, images)  # builds the cached graphs
    updated = copy.deepcopy(model)
    with torch.no_grad():
        updated.encoder.conv1.weight.mul_(1.5)
        updated.branches[1].decoder.layer1[0].bn1.running_var.mul_(2.0)
    fast, plain = _both_paths(updated, images)
    _assert_same(fast, plain)
    with torch.no_grad():
        before = model(images)
    assert not torch.allclose(fast.anomaly_map, before.anomaly_map)


def test_fast_path_follows_replaced_submodules(model: EA2DModel) -> None:
    images = torch.randn(1, 3, 64, 64)
    changed = copy.deepcopy(model)
    _both_paths(changed, images)
    changed.branches[0].decoder.layer3[0].bn2 = _randomise_bn(changed.branches[0].decoder.layer3[0].bn2)
    _assert_same(*_both_paths(changed, images))


def _randomise_bn(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(bn.num_features).eval()
    with torch.no_grad():
        new.running_var.fill_(3.0)
        new.bias.fill_(0.3)
    return new


def test_fast_path_not_used_in_training_or_with_batch_statistics(
    model: EA2DModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = ConvBatchNorm2d.forward

    def counting(self: ConvBatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return original(self, x)

    monkeypatch.setattr(ConvBatchNorm2d, "forward", counting)
    images = torch.randn(2, 3, 64, 64)
    trained = copy.deepcopy(model).train()
    trained(images)
    assert not calls
    trained.eval()
    trained.branches[0].decoder.layer2[0].bn1.train()  # one BatchNorm on batch statistics
    with torch.no_grad():
        trained(images)
    assert not calls
    trained.eval()
    with torch.no_grad():
        trained(images)
    assert calls


def test_export_sees_the_plain_modules(model: EA2DModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """anomalib's ONNX/OpenVINO export goes through torch.export: it must trace the plain modules."""
    calls = []
    original = ConvBatchNorm2d.forward

    def counting(self: ConvBatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return original(self, x)

    monkeypatch.setattr(ConvBatchNorm2d, "forward", counting)
    model.eval()
    images = torch.randn(1, 3, 64, 64)

    class Scores(nn.Module):
        def __init__(self, inner: EA2DModel) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            output = self.inner(x)
            return output.pred_score, output.anomaly_map

    exported = torch.export.export(Scores(model), (images,), strict=False)
    assert not calls
    targets = {str(node.target) for node in exported.graph.nodes}
    assert any("batch_norm" in target for target in targets)
    with torch.no_grad():
        expected = model(images)
    assert calls  # the eager call itself takes the fast path
    torch.testing.assert_close(exported.module()(images)[1], expected.anomaly_map, atol=TOL, rtol=0)


def test_untraceable_module_falls_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow: not fx-traceable
                return self.bn(self.conv(x))
            return self.bn(self.conv(-x))

    module = Branchy().eval()
    cache = fusion.FoldedGraphCache()
    with caplog.at_level("WARNING"):
        graph = cache.get(module)
    assert graph is module
    assert "using it unfolded" in caplog.text


def test_model_pickles_and_copies_without_cached_graphs(model: EA2DModel, tmp_path) -> None:
    images = torch.randn(1, 3, 64, 64)
    _both_paths(model, images)
    path = tmp_path / "model.pt"
    torch.save(model, path)
    loaded = torch.load(path, weights_only=False)
    assert not loaded._folded._entries
    _assert_same(*_both_paths(loaded, images))


def test_eval_gradients_match_plain_modules(model: EA2DModel) -> None:
    """With autograd on, the folded path recomputes its weights, so gradients reach the original parameters."""
    images = torch.randn(1, 3, 64, 64)
    model.eval()
    grads = []
    for fast in (True, False):
        model.fast_inference = fast
        model.zero_grad()
        EA2DLoss()(model.features(images)).backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    model.fast_inference = True
    model.zero_grad()
    assert len(grads[0]) == len(grads[1]) > 0
    for fast, plain in zip(*grads, strict=True):
        torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-3)


def test_folded_weights_are_cached_without_autograd(model: EA2DModel) -> None:
    images = torch.randn(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        model(images)
    graph = model._folded.get(model.encoder)
    folded = next(m for m in graph.modules() if isinstance(m, ConvBatchNorm2d))
    with torch.no_grad():
        weight, _ = folded.folded()
        again, _ = folded.folded()
        assert again is weight
        folded.parts[1].running_var.add_(1.0)  # in-place change: the cache must notice
        changed, _ = folded.folded()
        folded.parts[1].running_var.sub_(1.0)
    assert changed is not weight
    assert not torch.allclose(changed, weight)
