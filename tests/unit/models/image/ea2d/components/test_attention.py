"""SelfAttention2d against an explicit SAGAN-style position attention written out with bmm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from anomalib_ea2d.models.image.ea2d.components import SelfAttention2d


def _randomised(channels: int, gamma: float, dtype: torch.dtype = torch.float32) -> SelfAttention2d:
    torch.manual_seed(0)
    module = SelfAttention2d(channels).to(dtype)
    with torch.no_grad():
        for conv in (module.query_conv, module.key_conv, module.value_conv):
            # Larger than default weights so that scaling or softmax-axis mistakes show clearly.
            conv.weight.normal_(0.0, 0.5)
            conv.bias.normal_(0.0, 0.5)
        module.gamma.fill_(gamma)
    return module


def _explicit(module: SelfAttention2d, x: torch.Tensor, scale: float = 1.0, softmax_dim: int = -1) -> torch.Tensor:
    """out = gamma * (V A^T) + x with A = softmax(Q^T K) over the key positions."""
    batch, channels, height, width = x.shape
    positions = height * width
    q = module.query_conv(x).reshape(batch, -1, positions)  # [B, C/8, N]
    k = module.key_conv(x).reshape(batch, -1, positions)  # [B, C/8, N]
    v = module.value_conv(x).reshape(batch, channels, positions)  # [B, C, N]
    energy = torch.bmm(q.transpose(1, 2), k) * scale  # [B, N, N]: query position i, key position j
    attention = torch.softmax(energy, dim=softmax_dim)
    out = torch.bmm(v, attention.transpose(1, 2))  # [B, C, N]
    return module.gamma * out.reshape(batch, channels, height, width) + x


def test_projection_shapes_and_initial_gamma() -> None:
    module = SelfAttention2d(64)
    assert isinstance(module.query_conv, nn.Conv2d)
    assert module.query_conv.weight.shape == (8, 64, 1, 1)
    assert module.query_conv.bias is not None
    assert module.query_conv.bias.shape == (8,)
    assert module.key_conv.weight.shape == (8, 64, 1, 1)
    assert module.key_conv.bias is not None
    assert module.key_conv.bias.shape == (8,)
    assert module.value_conv.weight.shape == (64, 64, 1, 1)
    assert module.value_conv.bias is not None
    assert module.value_conv.bias.shape == (64,)
    assert module.gamma.shape == (1,)
    assert module.gamma.item() == 0.0
    assert module.gamma.requires_grad


def test_zero_gamma_is_exact_identity() -> None:
    module = _randomised(32, gamma=0.0)
    x = torch.randn(2, 32, 5, 7) * 10
    with torch.no_grad():
        out = module(x)
    assert torch.equal(out, x)


@pytest.mark.parametrize("gamma", [0.7, -1.3])
def test_matches_explicit_bmm_attention_float64(gamma: float) -> None:
    module = _randomised(16, gamma=gamma, dtype=torch.float64)
    x = torch.randn(3, 16, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        actual = module(x)
        expected = _explicit(module, x)
        # The explicit form must be able to tell the conventions apart on this input.
        scaled = _explicit(module, x, scale=(16 // 8) ** -0.5)
        wrong_axis = _explicit(module, x, softmax_dim=1)
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(actual, scaled, atol=1e-3)
    assert not torch.allclose(actual, wrong_axis, atol=1e-3)


def test_matches_explicit_bmm_attention_float32_square_map() -> None:
    module = _randomised(64, gamma=0.5)
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), _explicit(module, x), rtol=1e-5, atol=1e-5)


def test_mixes_information_across_positions() -> None:
    module = _randomised(16, gamma=1.0, dtype=torch.float64)
    x = torch.randn(1, 16, 4, 4, dtype=torch.float64)
    perturbed = x.clone()
    perturbed[..., 3, 3] += 5.0
    with torch.no_grad():
        delta = (module(perturbed) - module(x))[..., 0, 0]
    # A 1x1 convolution alone could not move position (0, 0); attention over all positions does.
    assert delta.abs().max() > 1e-6


def test_too_few_channels_raises() -> None:
    with pytest.raises(ValueError, match="4"):
        SelfAttention2d(4)
