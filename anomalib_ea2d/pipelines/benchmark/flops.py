"""Floating-point work of a call and the machine's measured peak, for the speed studies.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`: convolutions and matrix
products (a multiply-add counts 2; element-wise work, normalisation and resizing are not counted).
The peak is measured, not taken from a data sheet: the FLOP/s of two large dense kernels of the
library the models run on — a square matrix product (MKL on CPU, cuBLAS on GPU) and a
channels-last 1x1 convolution (oneDNN, cuDNN) — timed in the same run and in alternation with the
models, so that a loaded machine slows both alike. The better of the two is the peak every
fraction is taken against (:func:`measured_peak`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812
from torch.utils.flop_counter import FlopCounterMode

CONVOLUTION, MATMUL = "convolution", "matmul"
"""FLOP kinds of :class:`FlopCount`: convolutions (and their transposes) and matrix products."""


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one call, in all and by kind (``convolution``, ``matmul``, ``other``).

    Example:
        >>> count = count_flops(lambda: torch.ones(4, 8) @ torch.ones(8, 2))
        >>> count.total, count.by_kind
        (128.0, {'matmul': 128.0})
    """

    total: float
    by_kind: dict[str, float] = field(default_factory=dict)


def _kind(operator: Any) -> str:  # noqa: ANN401 - a torch OpOverloadPacket
    name = str(operator)
    if "convolution" in name:
        return CONVOLUTION
    if any(part in name for part in ("mm", "matmul", "baddbmm", "linear")):
        return MATMUL
    return "other"


def count_flops(function: Callable[[], object], inference: bool = True) -> FlopCount:
    """FLOPs of one call of ``function`` (run once; under ``torch.inference_mode`` unless ``inference=False``).

    With ``inference=False`` the call may run a backward pass, whose FLOPs are counted too.
    """
    with torch.inference_mode(inference), FlopCounterMode(display=False) as counter:
        function()
    by_kind: dict[str, float] = {}
    for operator, flops in counter.get_flop_counts().get("Global", {}).items():
        by_kind[_kind(operator)] = by_kind.get(_kind(operator), 0.0) + float(flops)
    return FlopCount(total=float(counter.get_total_flops()), by_kind=by_kind)


@dataclass(frozen=True)
class Kernel:
    """A dense reference kernel: the call and its FLOPs."""

    call: Callable[[], object]
    flops: float
    description: str


def peak_kernels(
    gemm_size: int,
    conv1x1: tuple[int, int, int],
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> dict[str, Kernel]:
    """The reference kernels of :func:`measured_peak`, on ``device`` in ``dtype``.

    Args:
        gemm_size: Side ``n`` of the square matrix product (``2 n^3`` FLOPs).
        conv1x1: ``(batch, channels, side)`` of the channels-last 1x1 convolution, channels in = out.
        device: Torch device.
        dtype: Element type (``float32`` for the FP32 peak; ``bfloat16`` on a GPU for its bf16 peak).

    Example:
        >>> kernels = peak_kernels(64, (1, 16, 8))
        >>> {name: kernel.flops for name, kernel in kernels.items()}
        {'gemm': 524288.0, 'conv1x1': 32768.0}
    """
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(gemm_size, gemm_size, generator=generator).to(device, dtype) for _ in range(2))
    batch, channels, side = conv1x1
    x = torch.randn(batch, channels, side, side, generator=generator).to(device, dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(channels, channels, 1, 1, generator=generator).to(device, dtype)
    weight = weight.contiguous(memory_format=torch.channels_last) / channels**0.5

    def gemm() -> torch.Tensor:
        with torch.inference_mode():
            return torch.mm(a, b)

    def conv() -> torch.Tensor:
        with torch.inference_mode():
            return F.conv2d(x, weight)

    name = str(dtype).removeprefix("torch.")
    return {
        "gemm": Kernel(gemm, 2.0 * gemm_size**3, f"{gemm_size}x{gemm_size} {name} matrix product"),
        "conv1x1": Kernel(
            conv,
            2.0 * batch * channels * channels * side * side,
            f"1x1 convolution, {channels} channels, {side}x{side}, batch {batch}, channels-last, {name}",
        ),
    }


def measured_peak(seconds: dict[str, float], kernels: dict[str, Kernel]) -> tuple[float, dict[str, float]]:
    """The peak FLOP/s (the best kernel's) and each kernel's FLOP/s, from the kernels' seconds per call.

    Example:
        >>> kernels = {"a": Kernel(print, 4e9, ""), "b": Kernel(print, 1e9, "")}
        >>> measured_peak({"a": 2.0, "b": 0.25}, kernels)
        (4000000000.0, {'a': 2000000000.0, 'b': 4000000000.0})
    """
    rates = {name: kernel.flops / seconds[name] for name, kernel in kernels.items()}
    return max(rates.values()), rates


__all__ = ["CONVOLUTION", "MATMUL", "FlopCount", "Kernel", "count_flops", "measured_peak", "peak_kernels"]
