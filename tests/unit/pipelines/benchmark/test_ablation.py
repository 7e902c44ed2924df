"""The ablation variants of the benchmark change what they claim to change, and nothing else."""

from __future__ import annotations

import pytest
import torch

from anomalib_ea2d.models.image.ea2d.components import SelfAttention2d
from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel
from anomalib_ea2d.pipelines.benchmark.ablation import build_ablation


def test_ablation_variants_change_what_they_claim() -> None:
    images = torch.rand(2, 3, 64, 64)
    attention = build_ablation("no_attention", "resnet18", 64, 2)
    assert not any(isinstance(m, SelfAttention2d) for m in attention.model.modules())
    one_view = build_ablation("one_view", "resnet18", 64, 2)
    assert isinstance(one_view.model, EA2DModel)
    assert one_view.model.num_views == 1
    assert len(one_view.model.branches) == 1
    full = build_ablation("full", "resnet18", 64, 2)
    one_branch = sum(p.numel() for p in full.model.branches[0].parameters())
    parameters = sum(p.numel() for p in one_view.model.parameters())
    assert parameters == sum(p.numel() for p in full.model.parameters()) - one_branch
    assert one_view.loss.view2_weight == 0
    assert one_view.loss.contrastive_weight == 0
    one_view.model.eval()
    with torch.no_grad():
        output = one_view.model(images)
    assert output.anomaly_map.shape == (2, 1, 64, 64)
    assert build_ablation("no_contrastive", "resnet18", 64, 2).loss.contrastive_weight == 0
    assert build_ablation("frozen_encoder", "resnet18", 64, 2).hparams.encoder_lr == 0
    with pytest.raises(ValueError, match="Unknown ablation"):
        build_ablation("no_decoder", "resnet18", 64, 2)
