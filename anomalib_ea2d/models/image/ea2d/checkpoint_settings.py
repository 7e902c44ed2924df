"""A checkpoint loaded into an EA2D built with other settings stops with one sentence naming them.

``anomalib test/predict --ckpt_path`` (and ``Engine.test/predict(ckpt_path=...)``) build the model
from the command line's init args, then load the checkpoint's weights into it. Settings that shape
the weights (``backbone``, ``standardize_maps``) then failed with hundreds of lines of state-dict
mismatches, and settings that only change the scores (``image_size``, ``roi``, the score's reduction)
gave other scores than the training run without a word. :func:`check_checkpoint_settings` compares
the checkpoint's saved hyper-parameters with the model's before the weights load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHECKPOINT_SETTINGS: tuple[str, ...] = (
    "backbone",
    "image_size",
    "standardize_maps",
    "roi",
    "score_reduction",
    "top_k_fraction",
    "sigma",
)
"""Init args that change the weights' shapes or the scores of a trained model."""


class CheckpointSettingsError(ValueError):
    """A checkpoint was trained with other settings than the model it is loaded into."""


def _comparable(name: str, value: Any) -> Any:  # noqa: ANN401 - any init-arg value
    """``value`` in a form where equal settings compare equal (``64`` and ``[64, 64]``, ``None`` and ``False``)."""
    if name == "image_size":
        return (value, value) if isinstance(value, int) else tuple(value)
    if name == "roi":
        if not value:
            return None
        return tuple(sorted(dict(value).items())) if isinstance(value, Mapping) else value
    return value


def _flag(name: str, value: Any) -> str:  # noqa: ANN401 - any init-arg value
    """The command-line option that sets ``name`` to ``value``.

    Example:
        >>> print(_flag("roi", {"threshold": 0.05}))
        --model.roi '{"threshold": 0.05}'
        >>> print(_flag("image_size", [64, 96]))
        --model.image_size '[64, 96]'
    """
    if isinstance(value, bool) or value is None:
        return f"--model.{name} {str(bool(value)).lower()}"
    if isinstance(value, list | tuple | Mapping):  # JSON, which the CLI parses, in shell quotes
        return f"--model.{name} '{json.dumps(value if isinstance(value, list | tuple) else dict(value))}'"
    return f"--model.{name} {value}"


def settings_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, saved value, current value)`` of each of :data:`CHECKPOINT_SETTINGS` that differs.

    A setting the checkpoint does not record is not compared.

    Example:
        >>> settings_differences({"image_size": 64, "roi": None}, {"image_size": [64, 64], "roi": False})
        []
        >>> settings_differences({"backbone": "resnet18"}, {"backbone": "resnet50"})
        [('backbone', 'resnet18', 'resnet50')]
    """
    return [
        (name, saved[name], current.get(name))
        for name in CHECKPOINT_SETTINGS
        if name in saved and _comparable(name, saved[name]) != _comparable(name, current.get(name))
    ]


def check_checkpoint_settings(
    checkpoint: Mapping[str, Any], current: Mapping[str, Any], source: str | Path | None = None
) -> None:
    """Raise :class:`CheckpointSettingsError` if ``checkpoint`` was trained with other settings than ``current``.

    Args:
        checkpoint: The loaded Lightning checkpoint (its ``hyper_parameters`` are compared).
        current: The model's hyper-parameters.
        source: Where the checkpoint came from, for the message.

    Example:
        >>> check_checkpoint_settings({"hyper_parameters": {"image_size": 64}}, {"image_size": 64})
        >>> try:
        ...     check_checkpoint_settings({"hyper_parameters": {"image_size": 64}}, {"image_size": 256})
        ... except CheckpointSettingsError as error:
        ...     print(str(error).split(";")[0])
        The checkpoint was trained with image_size=64, but this EA2D was built with image_size=256
    """
    differences = settings_differences(checkpoint.get("hyper_parameters") or {}, current)
    if not differences:
        return
    name = f"Checkpoint {source}" if source else "The checkpoint"
    saved = ", ".join(f"{key}={value!r}" for key, value, _ in differences)
    built = ", ".join(f"{key}={value!r}" for key, _, value in differences)
    flags = " ".join(_flag(key, value) for key, value, _ in differences)
    msg = (
        f"{name} was trained with {saved}, but this EA2D was built with {built}; build the model with the "
        f"checkpoint's settings (on the command line: {flags}) or load it with EA2D.load_from_checkpoint, "
        "which reads them from the file."
    )
    raise CheckpointSettingsError(msg)


__all__ = ["CHECKPOINT_SETTINGS", "CheckpointSettingsError", "check_checkpoint_settings", "settings_differences"]
