"""The seeded reference-weight builder of the parity tests (``tests.helpers.reference_weights``).

Checks the rules its docstring states: which keys draw and which do not, the value of each kind of
tensor, the draw order, shapes and order from the key file, and determinism per seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.helpers.reference_weights import KEYS_FILE, build_reference_state_dict, load_reference_keys


def _keys_file(tmp_path: Path, entries: list[tuple[str, list[int], str]]) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([list(entry) for entry in entries]))
    return path


@pytest.fixture(scope="module")
def seed0() -> dict[str, torch.Tensor]:
    return build_reference_state_dict(0)


def test_names_shapes_and_order_follow_the_key_file(seed0: dict[str, torch.Tensor]) -> None:
    keys = load_reference_keys()
    assert len(keys) == 852
    assert list(seed0) == [name for name, _, _ in keys]
    for name, shape, dtype in keys:
        assert tuple(seed0[name].shape) == shape, name
        assert str(seed0[name].dtype) == f"torch.{dtype}", name


def test_counters_are_int64_zeros_and_gammas_one_half(seed0: dict[str, torch.Tensor]) -> None:
    counters = [name for name in seed0 if name.endswith(".num_batches_tracked")]
    gammas = [name for name in seed0 if name.endswith(".gamma")]
    assert len(counters) == 137
    assert gammas == ["sa1.gamma", "sa2.gamma", "sa3.gamma", "sa4.gamma"]
    for name in counters:
        assert seed0[name].dtype == torch.int64
        assert seed0[name].shape == ()
        assert int(seed0[name]) == 0
    for name in gammas:
        assert torch.equal(seed0[name], torch.tensor([0.5]))


def test_value_ranges_per_kind(seed0: dict[str, torch.Tensor]) -> None:
    variances = torch.cat([t for name, t in seed0.items() if name.endswith(".running_var")])
    assert float(variances.min()) >= 1.0
    assert float(variances.max()) < 1.2
    means = torch.cat([t for name, t in seed0.items() if name.endswith(".running_mean")])
    assert abs(float(means.std()) - 0.1) < 0.005
    norms = torch.cat([t for name, t in seed0.items() if name.endswith(".weight") and t.dim() == 1])
    assert abs(float(norms.mean()) - 1.0) < 0.005
    assert abs(float(norms.std()) - 0.1) < 0.005
    biases = torch.cat([t for name, t in seed0.items() if name.endswith(".bias")])
    assert abs(float(biases.std()) - 0.1) < 0.005
    classifier = seed0["edc_encoder.fc.weight"]
    assert classifier.shape == (1000, 2048)
    assert abs(float(classifier.std()) - 0.01) < 1e-4
    conv = seed0["edc_encoder.layer4.0.conv2.weight"]  # 512 x 512 x 3 x 3: He init with fan-out 512 * 9
    assert abs(float(conv.std()) - math.sqrt(2.0 / (512 * 9))) < 1e-4


def test_draws_come_from_one_generator_in_key_order(tmp_path: Path) -> None:
    entries = [
        ("a.conv.weight", [4, 2, 3, 3], "float32"),
        ("a.bn.num_batches_tracked", [], "int64"),
        ("sa1.gamma", [1], "float32"),
        ("a.bn.running_var", [4], "float32"),
        ("a.fc.bias", [3], "float32"),
    ]
    state = build_reference_state_dict(5, _keys_file(tmp_path, entries))
    generator = torch.Generator().manual_seed(5)
    conv = torch.randn(4, 2, 3, 3, generator=generator) * math.sqrt(2.0 / (4 * 3 * 3))
    variance = 1.0 + 0.2 * torch.rand(4, generator=generator)  # counters and gamma drew nothing
    bias = 0.1 * torch.randn(3, generator=generator)
    assert torch.equal(state["a.conv.weight"], conv)
    assert torch.equal(state["a.bn.running_var"], variance)
    assert torch.equal(state["a.fc.bias"], bias)


def test_key_order_changes_the_values(tmp_path: Path) -> None:
    first = [("x.bias", [8], "float32"), ("y.bias", [8], "float32")]
    swapped = build_reference_state_dict(0, _keys_file(tmp_path, first[::-1]))
    state = build_reference_state_dict(0, _keys_file(tmp_path, first))
    assert torch.equal(state["x.bias"], swapped["y.bias"])
    assert not torch.equal(state["x.bias"], swapped["x.bias"])


def test_same_seed_same_weights_other_seed_other_weights(seed0: dict[str, torch.Tensor]) -> None:
    again = build_reference_state_dict(0, KEYS_FILE)
    other = build_reference_state_dict(1, KEYS_FILE)
    for name, tensor in seed0.items():
        assert torch.equal(tensor, again[name]), name
        drawn = not name.endswith((".num_batches_tracked", ".gamma"))
        assert torch.equal(tensor, other[name]) is not drawn, name


def test_a_key_without_rule_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no rule for reference key 'sa1\.scale'"):
        build_reference_state_dict(0, _keys_file(tmp_path, [("sa1.scale", [1], "float32")]))
