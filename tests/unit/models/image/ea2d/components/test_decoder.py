"""EA2D decoder: stage layout mirroring the encoder, output shapes, upsampling blocks and skip wiring."""

from __future__ import annotations

import pytest
import torch

from anomalib_ea2d.models.image.ea2d.components import EA2DDecoder, StageSpec, UpBasicBlock, UpBottleneck

# (out_channels, inner width, blocks) of ResNet stages 1..4, as in torchvision.
RESNET18 = [StageSpec(64, 64, 2), StageSpec(128, 128, 2), StageSpec(256, 256, 2), StageSpec(512, 512, 2)]
RESNET50 = [StageSpec(256, 64, 3), StageSpec(512, 128, 4), StageSpec(1024, 256, 6), StageSpec(2048, 512, 3)]
# Small bottleneck stages with the ResNet-50 depth pattern, to keep the bottleneck tests fast.
TINY_BOTTLENECK = [StageSpec(32, 8, 3), StageSpec(64, 16, 4), StageSpec(128, 32, 6), StageSpec(256, 64, 3)]


def _decoder(block: str, stages: list[StageSpec]) -> EA2DDecoder:
    torch.manual_seed(0)
    return EA2DDecoder(block, stages).eval()


def _inputs(stages: list[StageSpec], side: int = 2, batch: int = 2) -> tuple[torch.Tensor, ...]:
    e4 = torch.randn(batch, stages[3].out_channels, side, side)
    skip3 = torch.randn(batch, stages[2].out_channels, 2 * side, 2 * side)
    skip2 = torch.randn(batch, stages[1].out_channels, 4 * side, 4 * side)
    return e4, skip3, skip2


@pytest.mark.parametrize(("block", "stages"), [("basic", RESNET18), ("bottleneck", TINY_BOTTLENECK)])
def test_reconstructs_encoder_shapes(block: str, stages: list[StageSpec]) -> None:
    decoder = _decoder(block, stages)
    e4, skip3, skip2 = _inputs(stages, side=3)
    with torch.no_grad():
        d1, d2, d3 = decoder(e4, skip3, skip2)
    assert d3.shape == (2, stages[2].out_channels, 6, 6)
    assert d2.shape == (2, stages[1].out_channels, 12, 12)
    assert d1.shape == (2, stages[0].out_channels, 24, 24)


@pytest.mark.parametrize(
    ("block", "stages", "cls"), [("basic", RESNET18, UpBasicBlock), ("bottleneck", RESNET50, UpBottleneck)]
)
def test_stages_mirror_encoder_depths(block: str, stages: list[StageSpec], cls: type) -> None:
    decoder = EA2DDecoder(block, stages)
    for index in (1, 2, 3):
        layer = getattr(decoder, f"layer{index}")
        assert len(layer) == stages[index - 1].num_blocks
        assert all(type(b) is cls for b in layer)
        # Only the first block of a stage changes resolution (and so needs a projection shortcut).
        assert layer[0].shortcut is not None
        assert all(b.shortcut is None for b in layer[1:])
    assert not hasattr(decoder, "layer4")
    # The state dict lists the deepest stage first, as the reference decoder does.
    order = [k.split(".")[0] for k in decoder.state_dict()]
    assert order.index("layer3") < order.index("layer2") < order.index("layer1")


def test_bottleneck_inner_widths_follow_stage_specs() -> None:
    decoder = EA2DDecoder("bottleneck", RESNET50)
    assert decoder.layer3[0].conv1.in_channels == 2048
    for index, spec in zip((1, 2, 3), RESNET50, strict=False):
        for block in getattr(decoder, f"layer{index}"):
            assert block.conv2.in_channels == spec.width
            assert block.conv2.out_channels == spec.width
            assert block.conv3.out_channels == spec.out_channels


@pytest.mark.parametrize("cls", [UpBottleneck, UpBasicBlock])
def test_blocks_double_resolution_only_when_asked(cls: type) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 32, 5, 3)
    up = cls(32, 8, 16, upsample=True).eval()
    same = cls(32, 8, 32, upsample=False).eval()
    with torch.no_grad():
        assert up(x).shape == (2, 16, 10, 6)
        assert same(x).shape == (2, 32, 5, 3)
        # Blocks end in ReLU.
        assert up(x).min() >= 0
    assert same.shortcut is None


def test_upsampling_is_bilinear_not_nearest() -> None:
    torch.manual_seed(0)
    block = UpBasicBlock(4, 4, 4, upsample=True).eval()
    ramp = torch.arange(4.0).repeat(4, 1).expand(1, 4, 4, 4)
    up = block.upsample(ramp)
    # Nearest would repeat each column twice; bilinear (half-pixel centres) gives 0, 0.25, 0.75, 1.25, ...
    torch.testing.assert_close(up[0, 0, 0, :4], torch.tensor([0.0, 0.25, 0.75, 1.25]))


def test_skips_enter_at_the_right_stage() -> None:
    decoder = _decoder("basic", RESNET18)
    e4, skip3, skip2 = _inputs(RESNET18)
    with torch.no_grad():
        d1, d2, d3 = decoder(e4, skip3, skip2)
        # Written out: layer3 sees e4 only, layer2 adds skip3, layer1 adds skip2.
        torch.testing.assert_close(d3, decoder.layer3(e4))
        torch.testing.assert_close(d2, decoder.layer2(decoder.layer3(e4) + skip3))
        torch.testing.assert_close(d1, decoder.layer1(d2 + skip2))
        # Changing skip2 leaves the deeper reconstructions alone.
        d1_b, d2_b, d3_b = decoder(e4, skip3, skip2 + 1.0)
    assert torch.equal(d3, d3_b)
    assert torch.equal(d2, d2_b)
    assert not torch.allclose(d1, d1_b)


def test_unknown_block_raises() -> None:
    with pytest.raises(ValueError, match="'resblock'"):
        EA2DDecoder("resblock", RESNET18)
