"""Where an OpenVINO model's time goes: its per-layer performance counters, summed by layer type.

:class:`ProfiledOpenVINOModel` is the model compiled as the benchmark compiles it
(:class:`~anomalib_ea2d.pipelines.benchmark.backends.OpenVINOModel`) with ``PERF_COUNT`` on. Every call
records each executed layer's real time (``InferRequest.get_profiling_info()``) summed by layer
type (``Convolution``, ``Interpolate``, ``Subgraph``, ...), so that it can be timed in alternation
with the other measurements of a study; :meth:`~ProfiledOpenVINOModel.rows` reports its fastest call
(on a shared machine, the one least disturbed by other processes). The per-layer times of a call
can add up to more than its wall time, so each layer type's share of that sum is the number to
read, and that share of the call's wall time the time it accounts for. The
layer types are those of OpenVINO's CPU plugin after its graph transformations (BatchNorms folded,
activations and additions fused into the convolutions where it can; ``Subgraph``: chains of layers
compiled into one kernel).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from anomalib_ea2d.pipelines.benchmark.backends import OpenVINOModel


@dataclass
class _CallProfile:
    """One call's real time by layer type, its kernels' times and layer names."""

    wall: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)
    kernels: dict[str, dict[str, float]] = field(default_factory=dict)
    layers: dict[str, set[str]] = field(default_factory=dict)

    def add(self, layer_type: str, kernel: str, name: str, seconds: float) -> None:
        self.seconds[layer_type] = self.seconds.get(layer_type, 0.0) + seconds
        by_kernel = self.kernels.setdefault(layer_type, {})
        by_kernel[kernel] = by_kernel.get(kernel, 0.0) + seconds
        self.layers.setdefault(layer_type, set()).add(name)


class ProfiledOpenVINOModel:
    """An OpenVINO model with performance counters that keeps each call's profile.

    Args:
        xml: Path of the exported ``model.xml``.
        shape: Input shape it is compiled for.
        threads: ``INFERENCE_NUM_THREADS``.
    """

    def __init__(self, xml: Path, shape: Sequence[int], threads: int) -> None:
        self.model = OpenVINOModel(xml, shape, threads, properties={"PERF_COUNT": True})
        self.calls: list[_CallProfile] = []

    def reset(self) -> None:
        """Forget the calls so far (e.g. the warm-up)."""
        self.calls = []

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model and keep its per-layer times."""
        import openvino as ov  # noqa: PLC0415

        start = time.perf_counter()
        outputs = self.model(images)
        profile = _CallProfile(wall=time.perf_counter() - start)
        for info in self.model.request.get_profiling_info():
            if info.status == ov.ProfilingInfo.Status.EXECUTED:
                profile.add(info.node_type, info.exec_type, info.node_name, info.real_time.total_seconds())
        self.calls.append(profile)
        return outputs

    def rows(self) -> list[dict[str, Any]]:
        """Per layer type in the fastest call, largest first.

        Each row: summed real time (``ms``), its ``share`` of all layers' summed time, that share of
        the call's wall time (``wall_ms``, the time the type accounts for), layer count and the
        kernel it spent most time in.
        """
        if not self.calls:
            return []
        call = min(self.calls, key=lambda profile: profile.wall)
        total = sum(call.seconds.values()) or float("nan")
        rows = [
            {
                "layer_type": layer_type,
                "ms": 1e3 * value,
                "share": value / total,
                "wall_ms": 1e3 * call.wall * value / total,
                "layers": len(call.layers[layer_type]),
                "main_kernel": max(call.kernels[layer_type], key=call.kernels[layer_type].__getitem__),
            }
            for layer_type, value in call.seconds.items()
        ]
        return sorted(rows, key=lambda row: -row["ms"])


__all__ = ["ProfiledOpenVINOModel"]
