"""ResNet encoder of EA2D: timm feature extractor with ImageNet or local weights.

The encoder returns the outputs of the four ResNet stages (strides 4, 8, 16, 32). Weights come
from timm's pretrained registry (the torchvision ImageNet weights by default, as the paper's
reference code uses) or from a local checkpoint file for machines without network access.

Air-gapped machines: weights already in the local cache (Hugging Face hub cache, or torch hub's
``checkpoints`` folder) are loaded from there without any network access. Otherwise the weight
host is probed once with a short timeout, so that a machine without network fails within seconds
with a message saying what to do, instead of after the download client's minute of retries.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import timm
import torch
from torch import nn

logger = logging.getLogger(__name__)

DEFAULT_PRETRAINED_TAG = "tv_in1k"
"""timm tag of the torchvision ImageNet weights, used when the backbone name carries no tag."""

REACHABILITY_TIMEOUT_S = 5.0
"""How long the weight host may take to accept a connection before the machine counts as offline."""

HUB_WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")
"""File names timm downloads from a Hugging Face hub repository, in the order it tries them."""

_STATE_DICT_KEYS: tuple[str, ...] = ("state_dict_ema", "model_ema", "state_dict", "model", "model_state_dict")
"""Keys under which training checkpoints keep the weights (EMA first, as timm's own loader)."""

_TRUE_STRINGS = {"1", "true", "yes", "on"}


class OfflineWeightsError(RuntimeError):
    """ImageNet weights were asked for but cannot be downloaded and are not in the local cache."""


def _with_tag(backbone: str) -> str:
    return backbone if "." in backbone else f"{backbone}.{DEFAULT_PRETRAINED_TAG}"


def _offline_fix(tagged: str) -> str:
    name = tagged.split(".", maxsplit=1)[0]
    return (
        "pass backbone_weights=/path/to/resnet.pth (--model.backbone_weights; a torchvision or timm checkpoint, "
        f"e.g. torchvision.models.{name}(weights='IMAGENET1K_V1').state_dict() saved with torch.save on a machine with "
        "network), copy a Hugging Face hub cache that holds the weights to this machine, or pass pre_trained=False "
        "(--model.pre_trained false) to train from scratch or when loading a trained EA2D checkpoint, which holds "
        "the encoder weights"
    )


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_STRINGS


def hub_offline() -> bool:
    """Whether Hugging Face hub access is switched off (``HF_HUB_OFFLINE=1``), read at call time."""
    from huggingface_hub import constants  # noqa: PLC0415 - optional path, imported when needed

    return bool(constants.HF_HUB_OFFLINE) or _env_true("HF_HUB_OFFLINE")


def _pretrained_cfg(tagged: str) -> Any:  # noqa: ANN401 - timm's PretrainedCfg
    try:
        cfg = timm.models.get_pretrained_cfg(tagged)
    except RuntimeError as error:
        name = tagged.split(".", maxsplit=1)[0]
        tags = ", ".join(timm.list_pretrained(f"{name}.*"))
        msg = f"timm has no pretrained weights {tagged!r} ({error}); use one of: {tags}."
        raise ValueError(msg) from error
    if cfg is None:
        msg = f"timm has no pretrained weights for {tagged!r}; pass backbone_weights=/path/to/resnet.pth instead."
        raise ValueError(msg)
    return cfg


def _hub_repo(cfg: Any) -> tuple[str, str | None] | None:  # noqa: ANN401
    hub_id = getattr(cfg, "hf_hub_id", None)
    if not hub_id:
        return None
    repo, _, revision = hub_id.partition("@")
    return repo, revision or None


def cached_weights_file(tagged: str) -> Path | None:
    """Local file of timm's pretrained weights ``tagged`` if a previous download left one, else ``None``.

    Looks in the Hugging Face hub cache (``HF_HUB_CACHE``/``HF_HOME``) and torch hub's ``checkpoints``
    folder (``TORCH_HOME``), where timm puts what it downloads.

    Example:
        >>> cached_weights_file("resnet18.tv_in1k") is None or cached_weights_file("resnet18.tv_in1k").is_file()
        True
    """
    cfg = _pretrained_cfg(tagged)
    repo = _hub_repo(cfg)
    if repo is not None:
        from huggingface_hub import constants, try_to_load_from_cache  # noqa: PLC0415

        for filename in HUB_WEIGHT_FILES:
            found = try_to_load_from_cache(
                repo[0], filename, cache_dir=constants.HF_HUB_CACHE, revision=repo[1] or "main"
            )
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = getattr(cfg, "url", None)
    if url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        if candidate.is_file():
            return candidate
    return None


def _download_host(tagged: str) -> tuple[str, int] | None:
    """``(host, port)`` timm will connect to for ``tagged`` (the proxy if one is configured)."""
    cfg = _pretrained_cfg(tagged)
    if _hub_repo(cfg) is not None:
        from huggingface_hub import constants  # noqa: PLC0415

        url = urlparse(constants.ENDPOINT)
    elif getattr(cfg, "url", None):
        url = urlparse(cfg.url)
    else:
        return None
    if url.hostname is None:
        return None
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname):
        proxy_url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if proxy_url.hostname:
            return proxy_url.hostname, proxy_url.port or 80
    return url.hostname, url.port or (443 if url.scheme == "https" else 80)


def host_reachable(host: str, port: int, timeout: float = REACHABILITY_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (name lookup included).

    Example:
        >>> host_reachable("host.invalid", 443, timeout=2.0)
        False
    """
    result: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True)  # daemon: a hanging name lookup must not block
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _strip_common_prefix(
    state: dict[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Remove a wrapper prefix (``model.``, ``encoder.``, ...) under which all expected keys are found."""
    if set(expected) <= set(state):
        return state
    for key in state:
        if key.endswith("conv1.weight") and "layer" not in key:
            prefix = key.removesuffix("conv1.weight")
            if prefix and all(prefix + k in state for k in expected):
                logger.info("Backbone weights: using the tensors under the prefix %r.", prefix)
                return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return state


def _unwrap_state_dict(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """Take the backbone's tensors out of a torchvision/timm file, a wrapped dict or a DataParallel dict."""
    if isinstance(checkpoint, Mapping):
        for key in _STATE_DICT_KEYS:
            if isinstance(checkpoint.get(key), Mapping):
                logger.info("Backbone weights: using %r of %s.", key, path)
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        msg = (
            f"Backbone weights file {path} does not hold a state dict of tensors; "
            "save it with torch.save(model.state_dict())."
        )
        raise ValueError(msg)
    return {str(k).removeprefix("module."): v for k, v in checkpoint.items()}


def _read_checkpoint(path: Path) -> object:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # noqa: PLC0415 - installed with timm

        try:
            return load_file(path, device="cpu")
        except Exception as error:
            msg = f"Backbone weights file {path} is not a readable safetensors file ({error}); download it again."
            raise ValueError(msg) from error
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        msg = (
            f"Backbone weights file {path} could not be read by torch.load(weights_only=True) ({error}); pass a file "
            "saved with torch.save(model.state_dict()) (tensors only) or a .safetensors file."
        )
        raise ValueError(msg) from error


def load_backbone_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load a local torchvision- or timm-format ResNet checkpoint into a timm feature encoder.

    Accepted: ``torch.save(state_dict)`` files (``.pth``/``.pt``/``.bin``), ``.safetensors`` files,
    training checkpoints holding the weights under ``state_dict``/``model`` (EMA weights first, as
    timm does), with or without a ``module.`` or another wrapper prefix. The classifier
    (``fc.*``) is ignored. Missing, unexpected or mis-shaped tensors raise a ``ValueError`` listing them.

    Example:
        >>> import tempfile, torch, torchvision
        >>> path = Path(tempfile.mkdtemp()) / "resnet18.pth"
        >>> torch.save(torchvision.models.resnet18().state_dict(), path)
        >>> encoder = timm.create_model("resnet18", features_only=True, out_indices=(1, 2, 3, 4))
        >>> load_backbone_weights(encoder, path)
    """
    path = Path(path)
    if not path.is_file():
        msg = f"Backbone weights file {path} does not exist; pass the path of a ResNet checkpoint (.pth/.pt/.bin)."
        raise FileNotFoundError(msg)
    expected = encoder.state_dict()
    state = _strip_common_prefix(_unwrap_state_dict(_read_checkpoint(path), path), expected)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # the ImageNet classifier
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        details = "; ".join(
            part
            for part in (
                f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}" if missing else "",
                f"unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}" if unexpected else "",
                f"wrong shapes {mismatched[:8]}{' ...' if len(mismatched) > 8 else ''}" if mismatched else "",
            )
            if part
        )
        msg = (
            f"Backbone weights file {path} does not fit this backbone ({details}); use a checkpoint of the same ResNet."
        )
        raise ValueError(msg)
    encoder.load_state_dict(state)


def _features(name: str, **kwargs: Any) -> nn.Module:  # noqa: ANN401
    return timm.create_model(name, features_only=True, out_indices=(1, 2, 3, 4), **kwargs)


def create_encoder(backbone: str, pre_trained: bool, weights_path: str | Path | None = None) -> nn.Module:
    """Build a timm ResNet that returns the outputs of ``layer1`` .. ``layer4``.

    Args:
        backbone: timm model name, optionally with a pretrained tag (``resnet50.a1_in1k``).
        pre_trained: Use ImageNet weights: from the local cache if a previous download left them
            there (no network needed), else downloaded through timm.
        weights_path: Local checkpoint to load instead; takes precedence over ``pre_trained``.

    Raises:
        OfflineWeightsError: If ``pre_trained`` weights are neither cached nor downloadable (no
            network access); raised within seconds, the message says how to fix it.
        ValueError: If the backbone names a pretrained tag timm does not know.

    Example:
        >>> encoder = create_encoder("resnet18", pre_trained=False)
        >>> [f.shape[1] for f in encoder(torch.zeros(1, 3, 64, 64))]
        [64, 128, 256, 512]
    """
    name = backbone.split(".", maxsplit=1)[0]
    if weights_path is not None:
        encoder = _features(name, pretrained=False)
        load_backbone_weights(encoder, weights_path)
        return encoder
    if not pre_trained:  # said once when training starts (a checkpoint load replaces these weights)
        logger.debug("EA2D encoder %s built with random weights (pre_trained=False, no backbone_weights).", name)
        return _features(name, pretrained=False)
    tagged = _with_tag(backbone)
    cached = cached_weights_file(tagged)
    if cached is not None:
        logger.info("EA2D encoder %s: ImageNet weights from the local cache %s.", tagged, cached)
        return _features(tagged, pretrained=True, pretrained_cfg_overlay={"file": str(cached)})
    if hub_offline():
        msg = (
            f"ImageNet weights {tagged!r} are not in the local cache and HF_HUB_OFFLINE is set; {_offline_fix(tagged)}."
        )
        raise OfflineWeightsError(msg)
    host = _download_host(tagged)
    if host is not None and not host_reachable(*host):
        msg = (
            f"ImageNet weights {tagged!r} are not in the local cache and {host[0]}:{host[1]} cannot be reached "
            f"(no network access?); {_offline_fix(tagged)}."
        )
        raise OfflineWeightsError(msg)
    try:
        return _features(tagged, pretrained=True)
    except Exception as error:
        msg = f"Could not obtain ImageNet weights {tagged!r} ({type(error).__name__}: {error}); {_offline_fix(tagged)}."
        raise OfflineWeightsError(msg) from error
