"""Frozen BatchNorm statistics: the layer behind ``freeze_encoder_bn``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from anomalib_ea2d import EA2DModel
from anomalib_ea2d.models.components.batchnorm import (
    FrozenStatisticsBatchNorm2d,
    freeze_batchnorm_statistics,
    set_batchnorm_momentum,
)


def _trained_batchnorm() -> nn.BatchNorm2d:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    bn.train()(torch.randn(8, 4, 5, 5) * 3 + 2)  # statistics away from 0/1
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    return bn


def test_frozen_layer_is_the_eval_batchnorm_in_both_modes() -> None:
    bn = _trained_batchnorm()
    frozen = FrozenStatisticsBatchNorm2d(bn)
    x = torch.randn(3, 4, 6, 6) * 2
    expected = bn.eval()(x)
    statistics = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    for mode in (True, False):
        frozen.train(mode)
        torch.testing.assert_close(frozen(x), expected, rtol=0, atol=0)
    assert all(
        torch.equal(a, b)
        for a, b in zip(statistics, (frozen.running_mean, frozen.running_var, frozen.num_batches_tracked), strict=True)
    )


def test_frozen_layer_trains_its_affine_parameters_and_keeps_state_dict_names() -> None:
    bn = _trained_batchnorm()
    frozen = FrozenStatisticsBatchNorm2d(bn)
    assert list(frozen.state_dict()) == list(bn.state_dict())
    frozen(torch.randn(2, 4, 3, 3)).sum().backward()
    assert frozen.weight.grad is not None
    assert frozen.bias.grad is not None


def test_a_batchnorm_without_running_statistics_is_refused() -> None:
    with pytest.raises(ValueError, match="tracks no running statistics"):
        FrozenStatisticsBatchNorm2d(nn.BatchNorm2d(4, track_running_stats=False))


def test_sync_batchnorm_conversion_and_momentum_leave_frozen_layers_alone() -> None:
    """``--trainer.sync_batchnorm`` converts every BatchNorm; the frozen encoder must stay frozen."""
    model = EA2DModel(backbone="resnet18", pre_trained=False, freeze_encoder_bn=True)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    encoder_layers = [type(m) for m in converted.encoder.modules() if "BatchNorm" in type(m).__name__]
    assert encoder_layers
    assert set(encoder_layers) == {FrozenStatisticsBatchNorm2d}
    assert any(isinstance(m, nn.SyncBatchNorm) for m in converted.branches.modules())
    set_batchnorm_momentum(model, 0.5)  # frozen layers have no momentum to set
    assert not any(
        hasattr(m, "momentum") for m in model.encoder.modules() if isinstance(m, FrozenStatisticsBatchNorm2d)
    )


def test_freeze_counts_and_replaces_nested_batchnorms() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)))
    assert freeze_batchnorm_statistics(net) == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_momentum_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"bn_momentum must be in \[0, 1\]"):
        set_batchnorm_momentum(nn.BatchNorm2d(2), 1.5)
