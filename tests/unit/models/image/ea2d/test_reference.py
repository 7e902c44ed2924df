"""convert_reference_state_dict on reference-format dicts built here from a random EA2DModel.

The reference layout is written out independently of the library's mapping table: ``sa2``/``sa1``
refine e2/e3 of view 1 (the image), ``sa4``/``sa3`` those of view 2 (the rotated image); the
decoders are ``edc_decoder_1``/``edc_decoder_2`` and the encoder ``edc_encoder`` (with its unused
ImageNet classifier ``fc``).
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from anomalib_ea2d import EA2DModel, convert_reference_state_dict

# Our prefix -> reference prefix (the inverse of the conversion under test).
TO_REFERENCE = {
    "encoder.": "edc_encoder.",
    "branches.0.decoder.": "edc_decoder_1.",
    "branches.1.decoder.": "edc_decoder_2.",
    "branches.0.attention_e2.": "sa2.",
    "branches.0.attention_e3.": "sa1.",
    "branches.1.attention_e2.": "sa4.",
    "branches.1.attention_e3.": "sa3.",
}
GAMMAS = {"sa1": 1.0, "sa2": 2.0, "sa3": 3.0, "sa4": 4.0}


def _to_reference(state: dict[str, torch.Tensor], classifier_in: int) -> dict[str, torch.Tensor]:
    reference = {}
    for key, value in state.items():
        ours = next(p for p in TO_REFERENCE if key.startswith(p))
        reference[TO_REFERENCE[ours] + key[len(ours) :]] = value.clone()
    reference["edc_encoder.fc.weight"] = torch.randn(1000, classifier_in)
    reference["edc_encoder.fc.bias"] = torch.randn(1000)
    return reference


@pytest.fixture(scope="module")
def source() -> EA2DModel:
    torch.manual_seed(0)
    model = EA2DModel(backbone="resnet18", pre_trained=False)
    with torch.no_grad():
        # Perturb every tensor (BatchNorm statistics included) so that no two are alike and none
        # equals a fresh model's.
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.mul_(1.0 + 0.1 * torch.rand_like(tensor))
            elif tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn_like(tensor))
    return model


@pytest.fixture(scope="module")
def reference(source: EA2DModel) -> dict[str, torch.Tensor]:
    state = _to_reference(source.state_dict(), classifier_in=512)
    for name, gamma in GAMMAS.items():
        state[f"{name}.gamma"] = torch.tensor([gamma])
    return state


@pytest.fixture(scope="module")
def target() -> EA2DModel:
    torch.manual_seed(1)
    return EA2DModel(backbone="resnet18", pre_trained=False)


def test_converted_dict_loads_strictly_and_reproduces_every_tensor(
    source: EA2DModel, reference: dict[str, torch.Tensor], target: EA2DModel
) -> None:
    converted = convert_reference_state_dict(reference)
    assert set(converted) == set(target.state_dict())
    target.load_state_dict(converted, strict=True)
    expected = source.state_dict()
    for key, value in target.state_dict().items():
        if key.endswith(".gamma"):
            continue
        assert torch.equal(value, expected[key]), key


def test_classifier_is_dropped(reference: dict[str, torch.Tensor]) -> None:
    converted = convert_reference_state_dict(reference)
    assert not any(".fc." in key or key.startswith("fc.") for key in converted)
    assert len(converted) == len(reference) - 2


def test_attention_modules_land_on_the_right_view_and_scale(reference: dict[str, torch.Tensor]) -> None:
    converted = convert_reference_state_dict(reference)
    # Shapes: e2 of ResNet-18 has 128 channels, e3 has 256.
    for branch in (0, 1):
        assert converted[f"branches.{branch}.attention_e2.query_conv.weight"].shape == (16, 128, 1, 1)
        assert converted[f"branches.{branch}.attention_e3.query_conv.weight"].shape == (32, 256, 1, 1)
        assert converted[f"branches.{branch}.attention_e3.value_conv.weight"].shape == (256, 256, 1, 1)
    # Distinct values tell the two views apart.
    assert converted["branches.0.attention_e3.gamma"].item() == GAMMAS["sa1"]
    assert converted["branches.0.attention_e2.gamma"].item() == GAMMAS["sa2"]
    assert converted["branches.1.attention_e3.gamma"].item() == GAMMAS["sa3"]
    assert converted["branches.1.attention_e2.gamma"].item() == GAMMAS["sa4"]
    for ours, theirs in [
        ("0.attention_e2", "sa2"),
        ("0.attention_e3", "sa1"),
        ("1.attention_e2", "sa4"),
        ("1.attention_e3", "sa3"),
    ]:
        assert torch.equal(converted[f"branches.{ours}.key_conv.weight"], reference[f"{theirs}.key_conv.weight"])
    assert torch.equal(
        converted["branches.0.decoder.layer1.0.conv1.weight"], reference["edc_decoder_1.layer1.0.conv1.weight"]
    )
    assert torch.equal(
        converted["branches.1.decoder.layer1.0.conv1.weight"], reference["edc_decoder_2.layer1.0.conv1.weight"]
    )
    assert not torch.equal(
        converted["branches.0.decoder.layer1.0.conv1.weight"], converted["branches.1.decoder.layer1.0.conv1.weight"]
    )


def test_data_parallel_prefix_is_stripped(reference: dict[str, torch.Tensor]) -> None:
    plain = convert_reference_state_dict(reference)
    wrapped = convert_reference_state_dict({f"module.{key}": value for key, value in reference.items()})
    assert wrapped.keys() == plain.keys()
    assert all(torch.equal(wrapped[key], plain[key]) for key in plain)


def test_converted_model_computes_like_the_source(
    source: EA2DModel, reference: dict[str, torch.Tensor], target: EA2DModel
) -> None:
    with torch.no_grad():
        for name, module in (("sa1", source.branches[0].attention_e3), ("sa2", source.branches[0].attention_e2)):
            module.gamma.fill_(GAMMAS[name])
        for name, module in (("sa3", source.branches[1].attention_e3), ("sa4", source.branches[1].attention_e2)):
            module.gamma.fill_(GAMMAS[name])
    target.load_state_dict(convert_reference_state_dict(reference))
    source.eval()
    target.eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected, actual = source(images), target(images)
    torch.testing.assert_close(actual.anomaly_map, expected.anomaly_map)
    torch.testing.assert_close(actual.pred_score, expected.pred_score)


def test_rejects_an_ea2d_model_state_dict(source: EA2DModel) -> None:
    with pytest.raises(ValueError, match=r"unexpected keys: .*encoder\.conv1\.weight") as error:
        convert_reference_state_dict(source.state_dict())
    message = str(error.value)
    assert "missing parts" in message
    for part in ("edc_encoder", "edc_decoder_1", "edc_decoder_2", "sa1", "sa2", "sa3", "sa4"):
        assert part in message


def test_rejects_a_lightning_checkpoint(source: EA2DModel) -> None:
    checkpoint = {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}
    with pytest.raises(ValueError, match="Lightning") as error:
        convert_reference_state_dict(checkpoint)
    assert "load_from_checkpoint" in str(error.value)


def test_rejects_a_torchvision_resnet_state_dict() -> None:
    state = torchvision.models.resnet50(weights=None).state_dict()
    with pytest.raises(ValueError, match=r"unexpected keys: conv1\.weight") as error:
        convert_reference_state_dict(state)
    message = str(error.value)
    assert f"({len(state)} in all)" in message
    assert "missing parts: edc_encoder" in message


def test_rejects_a_reference_dict_with_a_part_missing(reference: dict[str, torch.Tensor]) -> None:
    partial = {key: value for key, value in reference.items() if not key.startswith("sa3.")}
    with pytest.raises(ValueError, match="missing parts: sa3") as error:
        convert_reference_state_dict(partial)
    assert "unexpected" not in str(error.value)


def test_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError, match="list"):
        convert_reference_state_dict([("sa1.gamma", torch.zeros(1))])  # type: ignore[arg-type]
