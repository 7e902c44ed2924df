"""Training-step variants and measured peaks of the ``gpu`` study.

The variants form a ladder, each adding one change to the one before: ``fp32`` (on CUDA, cuDNN's
convolutions run in TF32, torch's default), ``bf16_autocast``, ``bf16_autocast_channels_last``
(weights and input channels-last) and ``bf16_autocast_channels_last_compiled``
(``torch.compile``). Every variant trains a fresh copy of the same model with the paper's
optimiser recipe (AdamW, encoder 1e-5 / rest 5e-4, weight decay 1e-4, gradient-norm clipping 1.0).
The FLOPs of a step (forward and backward; torch's ``FlopCounterMode``) over its time give its
FLOP/s, reported as a fraction of the peak measured on the same device in the same run
(:func:`measure_peaks`: the fp32 peak for ``fp32``, the bf16 peak for the bf16 variants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from anomalib_ea2d.pipelines.benchmark.flops import count_flops, measured_peak, peak_kernels
from anomalib_ea2d.pipelines.benchmark.measure import summarize, time_calls


@dataclass(frozen=True)
class TrainVariant:
    """One way of running the training step.

    Attributes:
        autocast: bf16 autocast around forward and loss.
        channels_last: Weights and input in channels-last layout.
        compiled: The model wrapped by ``torch.compile``.
    """

    autocast: bool
    channels_last: bool
    compiled: bool

    @property
    def precision(self) -> str:
        """``"bf16"`` or ``"fp32"``: the peak this variant is compared with."""
        return "bf16" if self.autocast else "fp32"


TRAIN_VARIANTS: dict[str, TrainVariant] = {
    "fp32": TrainVariant(autocast=False, channels_last=False, compiled=False),
    "bf16_autocast": TrainVariant(autocast=True, channels_last=False, compiled=False),
    "bf16_autocast_channels_last": TrainVariant(autocast=True, channels_last=True, compiled=False),
    "bf16_autocast_channels_last_compiled": TrainVariant(autocast=True, channels_last=True, compiled=True),
}
"""The training-step ladder, in order."""


def paper_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """AdamW with the paper's two learning rates (encoder 1e-5, attention and decoders 5e-4), weight decay 1e-4."""
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    return torch.optim.AdamW(
        [
            {"params": list(model.encoder.parameters()), "lr": 1e-5},
            {"params": [p for p in model.parameters() if id(p) not in encoder_ids], "lr": 5e-4},
        ],
        weight_decay=1e-4,
    )


def training_step(
    model: nn.Module,
    loss_fn: nn.Module,
    images: torch.Tensor,
    variant: TrainVariant,
    compile_backend: str,
) -> tuple[Callable[[], None], float]:
    """A training-step function for ``model`` (converted and wrapped as ``variant`` says) and its FLOPs.

    The FLOPs are counted on one eager step (before any compilation; the optimizer step is not run
    for it and its element-wise work is not counted).
    """
    model.train()
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = paper_optimizer(model)
    device_type = images.device.type

    def forward_backward(network: nn.Module) -> None:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=variant.autocast):
            loss = loss_fn(network(images))
        loss.backward()

    flops = count_flops(lambda: forward_backward(model), inference=False).total
    optimizer.zero_grad(set_to_none=True)
    network = torch.compile(model, backend=compile_backend) if variant.compiled else model

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward(network)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step, flops


def measure_peaks(
    gemm_size: int,
    conv1x1: tuple[int, int, int],
    device: torch.device,
    repeats: int,
    sync: Callable[[], object] | None,
) -> dict[str, Any]:
    """fp32 and bf16 peaks of ``device``: the faster of a matrix product and a 1x1 convolution, in FLOP/s.

    On CUDA the fp32 convolution runs in TF32 (cuDNN's default in torch), the fp32 matrix product
    in full fp32 (torch's default), so the fp32 peak is the TF32 convolution's where that is faster.

    Returns:
        ``{"fp32": peak, "bf16": peak, "kernels": {"<precision>_<kernel>": GFLOP/s}}``.
    """
    peaks: dict[str, Any] = {"kernels": {}}
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        kernels = peak_kernels(gemm_size, conv1x1, device, dtype)
        seconds = {
            name: summarize(time_calls(kernel.call, repeats, warmup=2, sync=sync))["median"]
            for name, kernel in kernels.items()
        }
        peaks[precision], rates = measured_peak(seconds, kernels)
        peaks["kernels"] |= {f"{precision}_{name}": rate / 1e9 for name, rate in rates.items()}
    return peaks


__all__ = ["TRAIN_VARIANTS", "TrainVariant", "measure_peaks", "paper_optimizer", "training_step"]
