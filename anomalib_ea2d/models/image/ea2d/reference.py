"""Bring checkpoints of the paper's reference EA2D code into :class:`~anomalib_ea2d.EA2DModel`.

The reference code saves ``torch.save(model.state_dict())`` with the prefixes ``edc_encoder.``,
``edc_decoder_1.``, ``edc_decoder_2.`` and ``sa1.`` .. ``sa4.``: ``sa2``/``sa1`` refine e2/e3 of the
first view (the image), ``sa4``/``sa3`` those of the second view (the image rotated by 180
degrees). Its encoder keeps the unused ImageNet classifier ``fc``, which EA2D does not need.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

PREFIX_MAP: dict[str, str] = {
    "edc_encoder.": "encoder.",
    "edc_decoder_1.": "branches.0.decoder.",
    "edc_decoder_2.": "branches.1.decoder.",
    "sa2.": "branches.0.attention_e2.",
    "sa1.": "branches.0.attention_e3.",
    "sa4.": "branches.1.attention_e2.",
    "sa3.": "branches.1.attention_e3.",
}
"""Reference state-dict prefix -> :class:`~anomalib_ea2d.EA2DModel` prefix."""

IGNORED_PREFIXES: tuple[str, ...] = ("edc_encoder.fc.",)
"""Reference tensors EA2DModel has no use for (the encoder's ImageNet classifier)."""


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a state dict saved by the reference EA2D code onto ``EA2DModel``'s parameter names.

    A ``module.`` prefix (from ``nn.DataParallel``) is removed first.

    Args:
        state_dict: The reference model's ``state_dict()``.

    Returns:
        A state dict for ``EA2DModel(...).load_state_dict``.

    Raises:
        ValueError: If the input is not a reference EA2D state dict; the message lists the keys
            that do not belong and the parts that are missing.

    Example:
        >>> import torch
        >>> convert_reference_state_dict({"sa1.gamma": torch.zeros(1)})
        Traceback (most recent call last):
        ...
        ValueError: ...missing parts...
    """
    if not isinstance(state_dict, Mapping):
        msg = f"convert_reference_state_dict expects the reference model's state dict, got {type(state_dict).__name__}."
        raise ValueError(msg)
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        msg = (
            "This is a Lightning/anomalib checkpoint, not a reference EA2D state dict; "
            "load it with EA2D.load_from_checkpoint (or anomalib's --ckpt_path) instead."
        )
        raise ValueError(msg)
    converted: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for raw_key, value in state_dict.items():
        key = str(raw_key).removeprefix("module.")
        if key.startswith(IGNORED_PREFIXES):
            continue
        prefix = next((p for p in PREFIX_MAP if key.startswith(p)), None)
        if prefix is None:
            unexpected.append(key)
            continue
        converted[PREFIX_MAP[prefix] + key[len(prefix) :]] = value
    missing = [p.rstrip(".") for p in PREFIX_MAP if not any(k.startswith(PREFIX_MAP[p]) for k in converted)]
    if unexpected or missing:
        parts = []
        if unexpected:
            shown = ", ".join(unexpected[:10]) + (f" ... ({len(unexpected)} in all)" if len(unexpected) > 10 else "")
            parts.append(f"unexpected keys: {shown}")
        if missing:
            parts.append(f"missing parts: {', '.join(missing)}")
        msg = (
            f"Not a reference EA2D state dict ({'; '.join(parts)}); pass the dict saved by the reference code's "
            "torch.save(model.state_dict()), or load an anomalib checkpoint with EA2D.load_from_checkpoint."
        )
        raise ValueError(msg)
    return converted
