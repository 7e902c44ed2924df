"""Seeded weights in the reference implementation's state-dict layout, for the parity tests.

The parity fixture (``tests/fixtures/parity/``) holds numbers the paper's reference code computed
from a state dict that is not stored: it is rebuilt here, from the key list ``official_keys.json``
and a seed. One ``torch.Generator`` seeded with the seed supplies every random tensor, drawn key
after key in the file's order; what a key gets depends on its last name component:

======================= =================================================== ======
key ends in             value                                               draws
======================= =================================================== ======
``num_batches_tracked`` zeros, int64                                        no
``gamma``               0.5                                                 no
``running_mean``        ``0.1 * randn``                                     yes
``running_var``         ``1 + 0.2 * rand``                                  yes
``weight``, 4-D (conv)  ``randn * sqrt(2 / (out * kh * kw))`` (He, fan-out) yes
``weight``, 2-D (fc)    ``0.01 * randn``                                    yes
``weight``, 1-D (norm)  ``1 + 0.1 * randn``                                 yes
``bias``                ``0.1 * randn``                                     yes
======================= =================================================== ======

Any other key is an error. Random tensors are float32 (torch's default); the dtype column of the
key file is not used. Because the draws are sequential, one more, missing or reordered key shifts
every later tensor, so the key list must be the reference's own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import torch

KEYS_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "parity" / "official_keys.json"
"""The reference key list committed with the parity fixture."""

ReferenceKey = tuple[str, tuple[int, ...], str]
"""``(name, shape, dtype name)`` of one reference state-dict entry."""


def load_reference_keys(keys_file: Path = KEYS_FILE) -> list[ReferenceKey]:
    """Read a reference key list.

    Args:
        keys_file: JSON list of ``[name, shape, dtype]`` entries, in the reference's order.

    Returns:
        The entries, with shapes as tuples, in file order.
    """
    entries = json.loads(Path(keys_file).read_text())
    return [(str(name), tuple(int(size) for size in shape), str(dtype)) for name, shape, dtype in entries]


def _conv_weight(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    out_channels, _, kernel_h, kernel_w = shape
    return torch.randn(shape, generator=generator) * math.sqrt(2.0 / (out_channels * kernel_h * kernel_w))


def _weight(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    if len(shape) == 4:
        return _conv_weight(shape, generator)
    if len(shape) == 2:
        return 0.01 * torch.randn(shape, generator=generator)
    return 1.0 + 0.1 * torch.randn(shape, generator=generator)


RULES: dict[str, Callable[[tuple[int, ...], torch.Generator], torch.Tensor]] = {
    "num_batches_tracked": lambda shape, _: torch.zeros(shape, dtype=torch.int64),
    "gamma": lambda shape, _: torch.full(shape, 0.5),
    "running_mean": lambda shape, generator: 0.1 * torch.randn(shape, generator=generator),
    "running_var": lambda shape, generator: 1.0 + 0.2 * torch.rand(shape, generator=generator),
    "weight": _weight,
    "bias": lambda shape, generator: 0.1 * torch.randn(shape, generator=generator),
}
"""Last key-name component -> value maker (given the shape and the shared generator)."""


def build_reference_state_dict(seed: int, keys_file: Path = KEYS_FILE) -> dict[str, torch.Tensor]:
    """Build the seeded reference-format state dict the parity fixture was computed with.

    Args:
        seed: Seed of the one generator all random tensors are drawn from.
        keys_file: The reference key list (by default the committed one).

    Returns:
        Name -> tensor, in the key list's order.

    Raises:
        ValueError: If a key's last name component has no rule.
    """
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, shape, _ in load_reference_keys(keys_file):
        rule = RULES.get(name.rsplit(".", 1)[-1])
        if rule is None:
            raise ValueError(f"no rule for reference key {name!r}")
        state[name] = rule(shape, generator)
    return state
