"""EA2DLoss against hand-written cosine computations, and the gradient paths it opens in EA2DModel."""

from __future__ import annotations

import pytest
import torch

from anomalib_ea2d import EA2DFeatures, EA2DLoss, EA2DModel
from anomalib_ea2d.models.image.ea2d.anomaly_map import rotate180
from anomalib_ea2d.models.image.ea2d.loss import reconstruction_loss

SHAPES = [(8, 16, 16), (16, 8, 8), (32, 4, 4)]


def _cosine_by_hand(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine of two flattened tensors ``[B, ...]`` (float64 for a tight reference)."""
    a, b = a.double().flatten(1), b.double().flatten(1)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def _recon_by_hand(encoded: list[torch.Tensor], decoded: list[torch.Tensor]) -> torch.Tensor:
    return sum(1.0 - _cosine_by_hand(d, e).mean() for e, d in zip(encoded, decoded, strict=True))


def _random_features(batch: int = 3, seed: int = 0) -> EA2DFeatures:
    generator = torch.Generator().manual_seed(seed)

    def maps() -> list[torch.Tensor]:
        return [torch.randn(batch, *shape, generator=generator) for shape in SHAPES]

    return EA2DFeatures(
        encoder=[maps(), maps()],
        decoder=[maps(), maps()],
        pooled=[torch.randn(batch, 64, generator=generator), torch.randn(batch, 64, generator=generator)],
    )


def test_reconstruction_loss_is_one_minus_mean_flattened_cosine_summed_over_scales() -> None:
    features = _random_features()
    encoded, decoded = features.encoder[0], features.decoder[0]
    expected = _recon_by_hand(encoded, decoded)
    torch.testing.assert_close(reconstruction_loss(encoded, decoded).double(), expected, rtol=1e-6, atol=1e-6)
    # A per-position cosine (channels only) would give a different number on the same tensors.
    per_position = sum(
        1.0 - torch.nn.functional.cosine_similarity(d, e, dim=1).mean() for e, d in zip(encoded, decoded, strict=True)
    )
    assert not torch.allclose(reconstruction_loss(encoded, decoded), per_position, atol=1e-3)


def test_reconstruction_loss_extremes() -> None:
    encoded = _random_features().encoder[0]
    assert reconstruction_loss(encoded, encoded).abs() < 1e-6
    # Opposite maps: 2 per scale.
    torch.testing.assert_close(reconstruction_loss(encoded, [-e for e in encoded]), torch.tensor(6.0))
    # Invariant to a positive per-sample scale of the whole reconstruction.
    scaled = [e * torch.tensor([0.1, 3.0, 7.0]).view(-1, 1, 1, 1) for e in encoded]
    assert reconstruction_loss(encoded, scaled).abs() < 1e-6


def test_targets_are_detached_and_reconstructions_are_not() -> None:
    target = torch.randn(2, 8, 4, 4, requires_grad=True)
    decoded = torch.randn(2, 8, 4, 4, requires_grad=True)
    loss = reconstruction_loss([target], [decoded])
    grad_target, grad_decoded = torch.autograd.grad(loss, [target, decoded], allow_unused=True)
    assert grad_target is None
    assert grad_decoded is not None
    assert grad_decoded.abs().sum() > 0


def test_terms_match_hand_computation() -> None:
    features = _random_features()
    terms = EA2DLoss.terms(features)
    assert set(terms) == {"recon_view1", "recon_view2", "contrastive"}
    for view in (0, 1):
        expected = _recon_by_hand(features.encoder[view], features.decoder[view])
        torch.testing.assert_close(terms[f"recon_view{view + 1}"].double(), expected, rtol=1e-6, atol=1e-6)
    contrastive = 1.0 - _cosine_by_hand(*features.pooled).mean()
    torch.testing.assert_close(terms["contrastive"].double(), contrastive, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "weights", [(0.5, 0.5, 0.5), (1.0, 0.0, 0.0), (0.0, 2.0, 0.0), (0.3, 1.7, 0.0), (0.2, 0.4, 3.0)]
)
def test_weights_combine_linearly(weights: tuple[float, float, float]) -> None:
    features = _random_features(seed=1)
    terms = EA2DLoss.terms(features)
    expected = weights[0] * terms["recon_view1"] + weights[1] * terms["recon_view2"] + weights[2] * terms["contrastive"]
    torch.testing.assert_close(EA2DLoss(*weights)(features), expected)


def test_default_weights_are_one_half() -> None:
    features = _random_features(seed=2)
    terms = EA2DLoss.terms(features)
    torch.testing.assert_close(EA2DLoss()(features), 0.5 * sum(terms.values()))


@pytest.mark.parametrize("name", ["view1_weight", "view2_weight", "contrastive_weight"])
def test_negative_weight_raises(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        EA2DLoss(**{name: -0.1})


@pytest.fixture(scope="module")
def model() -> EA2DModel:
    torch.manual_seed(0)
    return EA2DModel(backbone="resnet18", pre_trained=False)


def test_contrastive_term_uses_gap_of_deepest_encoder_map_per_view(model: EA2DModel) -> None:
    model.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.features(images)
        e4_view1 = model.encoder(images)[3]
        e4_view2 = model.encoder(rotate180(images))[3]
    gap1, gap2 = e4_view1.mean(dim=(2, 3)), e4_view2.mean(dim=(2, 3))
    torch.testing.assert_close(features.pooled[0], gap1)
    torch.testing.assert_close(features.pooled[1], gap2)
    contrastive = EA2DLoss.terms(features)["contrastive"]
    torch.testing.assert_close(contrastive.double(), 1.0 - _cosine_by_hand(gap1, gap2).mean(), rtol=1e-5, atol=1e-6)


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


def test_gradients_reach_encoder_attention_and_both_decoders(model: EA2DModel) -> None:
    model.train()
    model.zero_grad(set_to_none=True)
    images = torch.randn(2, 3, 64, 64)
    EA2DLoss()(model(images)).backward()
    assert _grad_norm(model.encoder) > 0
    assert model.encoder.conv1.weight.grad is not None
    assert model.encoder.conv1.weight.grad.abs().sum() > 0
    for branch in model.branches:
        assert _grad_norm(branch.decoder) > 0
        assert all(p.grad is not None for p in branch.decoder.parameters())
        for attention in (branch.attention_e2, branch.attention_e3):
            # gamma starts at 0: its own gradient is non-zero, the projections' gradients are zero.
            assert attention.gamma.grad is not None
            assert attention.gamma.grad.abs().item() > 0

    # Once gamma != 0 the projections learn too.
    with torch.no_grad():
        for branch in model.branches:
            branch.attention_e2.gamma.fill_(0.5)
            branch.attention_e3.gamma.fill_(-0.5)
    model.zero_grad(set_to_none=True)
    EA2DLoss()(model(images)).backward()
    for branch in model.branches:
        for attention in (branch.attention_e2, branch.attention_e3):
            for name, parameter in attention.named_parameters():
                assert parameter.grad is not None, name
                assert parameter.grad.abs().sum() > 0, name
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} received no gradient"
        assert torch.isfinite(parameter.grad).all(), name
    with torch.no_grad():
        for branch in model.branches:
            branch.attention_e2.gamma.zero_()
            branch.attention_e3.gamma.zero_()


def test_model_targets_carry_no_gradient(model: EA2DModel) -> None:
    model.train()
    features = model(torch.randn(2, 3, 64, 64))
    assert all(e.requires_grad for e in features.encoder[0])
    # With the reconstructions cut off, what remains of the loss is the target side alone: no graph.
    targets_only = reconstruction_loss(features.encoder[0], [d.detach() for d in features.decoder[0]])
    assert not targets_only.requires_grad
    decoded_only = reconstruction_loss([e.detach() for e in features.encoder[0]], features.decoder[0])
    assert decoded_only.requires_grad
