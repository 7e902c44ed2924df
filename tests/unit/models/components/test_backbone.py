"""Backbone weights on machines without network: fast clear errors, cached and local weight files.

The network is blocked by patching ``socket.create_connection`` and the caches are pointed at empty
temporary folders, so these tests behave the same on machines with and without network access.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from huggingface_hub import constants as hub_constants
from safetensors.torch import save_file

from anomalib_ea2d import EA2DModel
from anomalib_ea2d.models.components.backbone import (
    OfflineWeightsError,
    cached_weights_file,
    create_encoder,
    host_reachable,
)

FAST_S = 10.0
"""An offline machine must get its error well within this (the download client alone retries for ~50 s)."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, int]]:
    """Block outgoing connections, empty the weight caches; return the connection attempts made."""
    attempts: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address)
        msg = "network blocked by the test"
        raise OSError(msg)

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    return attempts


def _random_resnet18_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return torchvision.models.resnet18().state_dict()


def _assert_encoder_holds(encoder: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    loaded = encoder.state_dict()
    assert loaded, "encoder has no tensors"
    for key, value in loaded.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)


def test_offline_without_cache_fails_fast_with_the_fix(no_network: list[tuple[str, int]]) -> None:
    start = time.perf_counter()
    with pytest.raises(OfflineWeightsError) as caught:
        create_encoder("resnet18", pre_trained=True)
    elapsed = time.perf_counter() - start
    message = str(caught.value)
    assert elapsed < FAST_S, f"took {elapsed:.1f}s"
    assert no_network, "the weight host was never probed"
    assert "resnet18.tv_in1k" in message
    assert "backbone_weights=" in message
    assert "pre_trained=False" in message


def test_hf_hub_offline_fails_without_touching_the_network(
    no_network: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineWeightsError, match=r"HF_HUB_OFFLINE is set.*backbone_weights="):
        EA2DModel(backbone="resnet18", pre_trained=True)
    assert no_network == []


def test_cached_imagenet_weights_load_without_network(no_network: list[tuple[str, int]]) -> None:
    state = _random_resnet18_state(seed=3)
    snapshot = Path(hub_constants.HF_HUB_CACHE) / "models--timm--resnet18.tv_in1k" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    save_file(state, snapshot / "model.safetensors")
    assert cached_weights_file("resnet18.tv_in1k") == snapshot / "model.safetensors"
    encoder = create_encoder("resnet18", pre_trained=True)
    _assert_encoder_holds(encoder, state)
    assert no_network == []


def test_torchvision_checkpoint_file(tmp_path: Path) -> None:
    state = _random_resnet18_state(seed=1)
    path = tmp_path / "resnet18-torchvision.pth"
    torch.save(state, path)
    model = EA2DModel(backbone="resnet18", pre_trained=True, backbone_weights=path)  # the file wins, no download
    _assert_encoder_holds(model.encoder, state)


def test_timm_safetensors_file(tmp_path: Path) -> None:
    torch.manual_seed(2)
    state = timm.create_model("resnet18").state_dict()
    path = tmp_path / "model.safetensors"
    save_file(state, path)
    _assert_encoder_holds(create_encoder("resnet18", pre_trained=False, weights_path=path), state)


def test_wrapped_training_checkpoint_with_prefix(tmp_path: Path) -> None:
    state = _random_resnet18_state(seed=4)
    path = tmp_path / "train-checkpoint.pth"
    torch.save({"epoch": 7, "state_dict": {f"module.backbone.{k}": v for k, v in state.items()}}, path)
    _assert_encoder_holds(create_encoder("resnet18", pre_trained=False, weights_path=path), state)


def test_wrong_shapes_are_listed(tmp_path: Path) -> None:
    state = _random_resnet18_state()
    state["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    del state["layer4.1.bn2.bias"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"bad\.pth does not fit") as caught:
        create_encoder("resnet18", pre_trained=False, weights_path=path)
    message = str(caught.value)
    assert "conv1.weight: file (32, 3, 7, 7) vs model (64, 3, 7, 7)" in message
    assert "layer4.1.bn2.bias" in message


def test_another_resnet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(ValueError, match=r"unexpected \['layer1\.2\."):
        create_encoder("resnet18", pre_trained=False, weights_path=path)


def test_unreadable_and_missing_weight_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"junk\.pth could not be read by torch\.load"):
        create_encoder("resnet18", pre_trained=False, weights_path=tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match=r"nothing\.pth does not exist"):
        create_encoder("resnet18", pre_trained=False, weights_path=tmp_path / "nothing.pth")


def test_unknown_pretrained_tag_lists_the_known_ones(no_network: list[tuple[str, int]]) -> None:
    with pytest.raises(ValueError, match=r"no pretrained weights 'resnet18\.nope'.*resnet18\.tv_in1k"):
        create_encoder("resnet18.nope", pre_trained=True)


def test_host_reachable_distinguishes_open_and_closed_ports() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert host_reachable("127.0.0.1", port, timeout=2.0)
    assert not host_reachable("127.0.0.1", port, timeout=2.0)  # closed now: refused at once
