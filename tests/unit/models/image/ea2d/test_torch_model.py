"""EA2DModel: output types and shapes per backbone, input checks, the two views, BatchNorm handling."""

from __future__ import annotations

import pytest
import torch
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_ea2d import EA2DFeatures, EA2DModel
from anomalib_ea2d.models.image.ea2d.anomaly_map import rotate180
from anomalib_ea2d.models.image.ea2d.components import UpBasicBlock, UpBottleneck
from anomalib_ea2d.models.image.ea2d.torch_model import SUPPORTED_BACKBONES, ViewBranch

# Per backbone (torchvision ResNets): output channels of stages 1..4, inner width and depth of each stage.
CHANNELS = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
    "wide_resnet50_2": (256, 512, 1024, 2048),
}
WIDTHS = {
    "resnet18": (64, 128, 256),
    "resnet34": (64, 128, 256),
    "resnet50": (64, 128, 256),
    "wide_resnet50_2": (128, 256, 512),
}
DEPTHS = {"resnet18": (2, 2, 2), "resnet34": (3, 4, 6), "resnet50": (3, 4, 6), "wide_resnet50_2": (3, 4, 6)}
BLOCKS = {"resnet18": UpBasicBlock, "resnet34": UpBasicBlock, "resnet50": UpBottleneck, "wide_resnet50_2": UpBottleneck}
STRIDES = (4, 8, 16)


def _batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_supported_backbones_are_the_tested_ones() -> None:
    assert set(SUPPORTED_BACKBONES) == set(CHANNELS)


@pytest.fixture(scope="module", params=sorted(CHANNELS))
def backbone_model(request: pytest.FixtureRequest) -> tuple[str, EA2DModel]:
    torch.manual_seed(0)
    return request.param, EA2DModel(backbone=request.param, pre_trained=False)


@pytest.fixture(scope="module")
def small_model() -> EA2DModel:
    torch.manual_seed(0)
    return EA2DModel(backbone="resnet18", pre_trained=False)


@pytest.mark.parametrize("size", [64, 256])
def test_eval_returns_inference_batch(backbone_model: tuple[str, EA2DModel], size: int) -> None:
    _, model = backbone_model
    model.eval()
    with torch.no_grad():
        output = model(torch.randn(1, 3, size, size))
    assert isinstance(output, InferenceBatch)
    assert output.pred_score.shape == (1,)
    assert output.anomaly_map.shape == (1, 1, size, size)
    assert torch.isfinite(output.anomaly_map).all()
    # 1 - cosine lies in [0, 2].
    assert output.anomaly_map.min() >= -1e-5
    assert output.anomaly_map.max() <= 2 + 1e-5


def test_train_returns_features_matching_encoder_shapes(backbone_model: tuple[str, EA2DModel]) -> None:
    name, model = backbone_model
    model.train()
    size = 64
    with torch.no_grad():
        features = model(torch.randn(1, 3, size, size))
    model.eval()
    assert isinstance(features, EA2DFeatures)
    assert len(features.encoder) == len(features.decoder) == len(features.pooled) == 2
    for view in (0, 1):
        assert len(features.encoder[view]) == len(features.decoder[view]) == 3
        for scale, (encoded, decoded) in enumerate(zip(features.encoder[view], features.decoder[view], strict=True)):
            side = size // STRIDES[scale]
            assert encoded.shape == (1, CHANNELS[name][scale], side, side)
            assert decoded.shape == encoded.shape
        assert features.pooled[view].shape == (1, CHANNELS[name][3])


def test_decoder_mirrors_the_backbone(backbone_model: tuple[str, EA2DModel]) -> None:
    name, model = backbone_model
    for branch in model.branches:
        assert branch.attention_e2.value_conv.in_channels == CHANNELS[name][1]
        assert branch.attention_e3.value_conv.in_channels == CHANNELS[name][2]
        for index in (1, 2, 3):
            layer = getattr(branch.decoder, f"layer{index}")
            assert len(layer) == DEPTHS[name][index - 1]
            assert all(type(block) is BLOCKS[name] for block in layer)
            # The first convolution of every block outputs the stage's inner width.
            assert {block.bn1.num_features for block in layer} == {WIDTHS[name][index - 1]}


def test_non_square_input(small_model: EA2DModel) -> None:
    small_model.eval()
    with torch.no_grad():
        output = small_model(torch.randn(2, 3, 64, 96))
    assert output.pred_score.shape == (2,)
    assert output.anomaly_map.shape == (2, 1, 64, 96)


@pytest.mark.parametrize(("height", "width"), [(60, 64), (64, 100), (33, 33)])
@pytest.mark.parametrize("training", [False, True])
def test_sizes_not_multiple_of_32_raise(small_model: EA2DModel, height: int, width: int, training: bool) -> None:
    small_model.train(training)
    with pytest.raises(ValueError, match=f"{height}x{width}"):
        small_model(torch.randn(1, 3, height, width))
    small_model.eval()


@pytest.mark.parametrize(
    ("batch", "height", "width", "raises"), [(1, 32, 32, True), (2, 32, 32, False), (1, 64, 32, False)]
)
def test_a_training_batch_batchnorm_cannot_normalise_raises_in_one_sentence(
    small_model: EA2DModel, batch: int, height: int, width: int, raises: bool
) -> None:
    small_model.train()
    images = torch.randn(batch, 3, height, width)
    if raises:
        with pytest.raises(ValueError, match=r"one 32x32 image.*image_size 64 or more"):
            small_model(images)
    else:
        assert isinstance(small_model(images), EA2DFeatures)
    small_model.eval()
    with torch.no_grad():  # inference of one such image is fine (running statistics)
        assert small_model(images[:1]).pred_score.shape == (1,)


def test_unknown_backbone_raises() -> None:
    with pytest.raises(ValueError, match="'vgg16'"):
        EA2DModel(backbone="vgg16", pre_trained=False)


def test_eval_second_view_is_the_rotated_image(small_model: EA2DModel) -> None:
    small_model.eval()
    small_model.second_view = lambda x: x.flip(-1)  # training-only hook; eval must ignore it
    images = torch.randn(2, 3, 64, 64)
    try:
        with torch.no_grad():
            features = small_model.features(images)
            expected = small_model.encoder(rotate180(images))
    finally:
        small_model.second_view = rotate180
    for actual, wanted in zip(features.encoder[1], expected[:3], strict=True):
        torch.testing.assert_close(actual, wanted)


def test_training_second_view_uses_the_hook() -> None:
    torch.manual_seed(0)
    model = EA2DModel(backbone="resnet18", pre_trained=False, freeze_encoder_bn=True).train()
    model.second_view = lambda x: x.flip(-1)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.features(images)
        expected_view2 = model.encoder(images.flip(-1))
        expected_view1 = model.encoder(images)
    # Encoder BNs frozen: the batched two-view pass equals encoding each view on its own.
    for actual, wanted in zip(features.encoder[1], expected_view2[:3], strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-5, atol=1e-5)
    for actual, wanted in zip(features.encoder[0], expected_view1[:3], strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-5, atol=1e-5)


def test_eval_output_does_not_depend_on_the_rest_of_the_batch(small_model: EA2DModel) -> None:
    small_model.eval()
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        batched = small_model(images)
        single = small_model(images[1:2])
    torch.testing.assert_close(batched.anomaly_map[1:2], single.anomaly_map, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched.pred_score[1:2], single.pred_score, rtol=1e-4, atol=1e-5)


def _statistics(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in module.named_buffers() if "running" in name}


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_encoder_bn_holds_whatever_the_mode_flags_say(freeze: bool) -> None:
    """The freeze is in the layers: flags set directly (as Lightning's loops do) cannot undo it."""
    torch.manual_seed(0)
    model = EA2DModel(backbone="resnet18", pre_trained=False, freeze_encoder_bn=freeze)
    for module in model.modules():  # what Lightning's mode restore does: no .train() call
        module.training = True
    images = torch.randn(2, 3, 64, 64) * 3 + 1
    encoder_before, decoder_before = _statistics(model.encoder), _statistics(model.branches)
    with torch.no_grad():
        model.eval()
        eval_targets = model.features(images).encoder[0]
        model.train()
        train_targets = model.features(images).encoder[0]
    encoder_after, decoder_after = _statistics(model.encoder), _statistics(model.branches)
    assert encoder_before
    encoder_unchanged = all(torch.equal(encoder_before[k], encoder_after[k]) for k in encoder_before)
    assert encoder_unchanged is freeze
    assert not any(torch.equal(decoder_before[k], decoder_after[k]) for k in decoder_before)
    same_as_eval = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(eval_targets, train_targets, strict=True))
    assert same_as_eval is freeze
    # the affine parameters of the frozen BatchNorms still train
    assert model.encoder.bn1.weight.requires_grad
    assert any(p is model.encoder.bn1.weight for p in model.parameters())


def test_bn_momentum_sets_every_batchnorm() -> None:
    default = EA2DModel(backbone="resnet18", pre_trained=False)
    assert {bn.momentum for bn in _batchnorms(default)} == {0.1}
    model = EA2DModel(backbone="resnet18", pre_trained=False, bn_momentum=0.3)
    bns = _batchnorms(model)
    assert len(bns) == len(_batchnorms(default))
    assert {bn.momentum for bn in bns} == {0.3}


@pytest.mark.parametrize("momentum", [-0.1, 1.5])
def test_bn_momentum_out_of_range_raises(momentum: float) -> None:
    with pytest.raises(ValueError, match=str(momentum)):
        EA2DModel(backbone="resnet18", pre_trained=False, bn_momentum=momentum)


def test_views_have_one_class_and_separate_parameters(small_model: EA2DModel) -> None:
    branches = small_model.branches
    assert len(branches) == 2
    assert type(branches[0]) is type(branches[1]) is ViewBranch
    assert branches[0] is not branches[1]
    for child in ("attention_e2", "attention_e3", "decoder"):
        assert type(getattr(branches[0], child)) is type(getattr(branches[1], child))
    keys = [set(branch.state_dict()) for branch in branches]
    assert keys[0] == keys[1]

    def storages(module: nn.Module) -> set[int]:
        tensors = [*module.parameters(), *module.buffers()]
        return {t.untyped_storage().data_ptr() for t in tensors if t.numel()}

    first, second, encoder = storages(branches[0]), storages(branches[1]), storages(small_model.encoder)
    assert not first & second
    assert not (first | second) & encoder
    # Differently initialised, too.
    assert not torch.equal(branches[0].decoder.layer1[0].conv1.weight, branches[1].decoder.layer1[0].conv1.weight)


def test_one_view_model_builds_one_branch_and_keeps_the_input_check() -> None:
    one_view = EA2DModel(backbone="resnet18", pre_trained=False, num_views=1)
    two_views = EA2DModel(backbone="resnet18", pre_trained=False)
    assert len(one_view.branches) == 1
    assert set(one_view.state_dict()) == {key for key in two_views.state_dict() if not key.startswith("branches.1.")}
    features = one_view(torch.rand(2, 3, 64, 64))
    assert features.encoder[0] is features.encoder[1]  # the one view, repeated for the loss
    with pytest.raises(ValueError, match=r"multiples of 32, got 64x80; resize the images"):
        one_view.eval()(torch.rand(1, 3, 64, 80))
    with pytest.raises(ValueError, match="num_views must be 2"):
        EA2DModel(backbone="resnet18", pre_trained=False, num_views=3)
