"""EA2DModel against the paper's reference implementation, through the parity fixture.

The fixture (``tests/fixtures/parity``, or ``$EA2D_PARITY_DIR``) holds the reference state-dict
layout and outputs the reference code computed for a fixed input from seeded weights, which
``tests.helpers.reference_weights`` rebuilds. Every expected value here is read from any
``expected_seed*.pt`` found in the fixture and every actual value is computed by our model, so the
test works unchanged for another seed, batch or image size.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from anomalib_ea2d import EA2DLoss, EA2DModel, convert_reference_state_dict
from anomalib_ea2d.models.image.ea2d.anomaly_map import rotate180, view_anomaly_map
from tests.helpers.reference_weights import build_reference_state_dict

MAP_TOL = 1e-5
LOSS_RTOL = 1e-5

EVAL_PATHS: dict[str, Callable[[EA2DModel], EA2DModel]] = {
    "plain": lambda model: model.eval(),
    "channels_last": lambda model: model.eval().to(memory_format=torch.channels_last),
    "fused": lambda model: model.fuse(channels_last=False),
    "fused_channels_last": lambda model: model.fuse(),
}
"""Every way the project runs EA2D in eval mode (the plain modules and the explicit fast path)."""


def _fixtures(parity_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(parity_dir.glob("expected_seed*.pt")):
        match = re.fullmatch(r"expected_seed(\d+)\.pt", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return found


def _model(state: dict[str, torch.Tensor], **kwargs: object) -> EA2DModel:
    model = EA2DModel(backbone="resnet50", pre_trained=False, **kwargs)
    model.load_state_dict(convert_reference_state_dict(state))
    return model


@pytest.fixture(scope="module")
def cases(parity_dir: Path, parity_keys_file: Path) -> list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """Per ``expected_seed*.pt`` found: the seeded reference weights and the reference's outputs."""
    fixtures = _fixtures(parity_dir)
    if not fixtures:
        pytest.fail(f"no expected_seed<N>.pt in the parity fixture folder {parity_dir}", pytrace=False)
    return [(build_reference_state_dict(seed, parity_keys_file), torch.load(path)) for seed, path in fixtures]


def test_conversion_covers_every_parameter(cases: list) -> None:
    state, _ = cases[0]
    model = EA2DModel(backbone="resnet50", pre_trained=False)
    converted = convert_reference_state_dict(state)
    assert set(converted) == set(model.state_dict())
    # Only the unused ImageNet classifier is dropped.
    assert len(converted) == len(state) - len([k for k in state if k.startswith("edc_encoder.fc.")])


@pytest.mark.parametrize("path", EVAL_PATHS)
@pytest.mark.parametrize("reduction", ["max", "mean"])
def test_scores_and_map_match_reference(cases: list, reduction: str, path: str) -> None:
    for state, expected in cases:
        model = EVAL_PATHS[path](_model(state, score_reduction=reduction))
        with torch.no_grad():
            output = model(expected["input"])
        torch.testing.assert_close(output.pred_score, expected[f"pred_score_{reduction}"], atol=MAP_TOL, rtol=0)
        assert output.anomaly_map.shape == expected["combined_map_input_res"].shape
        torch.testing.assert_close(output.anomaly_map, expected["combined_map_input_res"], atol=MAP_TOL, rtol=0)


@pytest.mark.parametrize("path", EVAL_PATHS)
def test_eval_loss_matches_reference(cases: list, path: str) -> None:
    for state, expected in cases:
        model = EVAL_PATHS[path](_model(state))
        with torch.no_grad():
            loss = EA2DLoss()(model.features(expected["input"]))
        torch.testing.assert_close(loss, expected["loss_eval"], atol=0, rtol=LOSS_RTOL)


@pytest.mark.parametrize(
    ("freeze_encoder_bn", "key"),
    [(True, "loss_train_encoder_bn_frozen"), (False, "loss_train_encoder_bn_batchstats")],
)
def test_training_loss_matches_reference(cases: list, freeze_encoder_bn: bool, key: str) -> None:
    for state, expected in cases:
        model = _model(state, freeze_encoder_bn=freeze_encoder_bn).train()
        loss = EA2DLoss()(model(expected["input"]))
        torch.testing.assert_close(loss.detach(), expected[key], atol=0, rtol=LOSS_RTOL)
        loss.backward()  # the reference loss is differentiable end to end
        assert model.encoder.conv1.weight.grad is not None


@pytest.mark.parametrize("path", EVAL_PATHS)
def test_per_view_maps_match_reference(cases: list, path: str) -> None:
    for state, expected in cases:
        model = EVAL_PATHS[path](_model(state))
        with torch.no_grad():
            features = model.features(expected["input"])
        maps = [view_anomaly_map(features.encoder[v], features.decoder[v]) for v in (0, 1)]
        torch.testing.assert_close(maps[0], expected["view1_map"], atol=MAP_TOL, rtol=0)
        torch.testing.assert_close(maps[1], expected["view2_map"], atol=MAP_TOL, rtol=0)
        combined = (maps[0] + rotate180(maps[1])) / 2
        torch.testing.assert_close(combined, expected["combined_map_feature_res"], atol=MAP_TOL, rtol=0)
