"""Where an OpenVINO model's time goes: its per-layer performance counters, summed by layer type.

:class:`ProfiledOpenVINOModel` is the model compiled as the benchmark compiles it
(:class:`~anomalib_ea2d.benchmark.backends.OpenVINOModel`) with ``PERF_COUNT`` on. Every call adds
each executed layer's real time (``InferRequest.get_profiling_info()``) to a sum by layer type
(``Convolution``, ``Interpolate``, ``Subgraph``, ...), so that it can be timed in alternation with
the other measurements of a study and its profile describes the same conditions. The layer types
are those of OpenVINO's CPU plugin after its graph transformations (BatchNorms folded, activations
and additions fused into the convolutions where it can; ``Subgraph``: element-wise chains it
compiled into one kernel).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from anomalib_ea2d.benchmark.backends import OpenVINOModel


class ProfiledOpenVINOModel:
    """An OpenVINO model with performance counters that sums its layers' times over its calls.

    Args:
        xml: Path of the exported ``model.xml``.
        shape: Input shape it is compiled for.
        threads: ``INFERENCE_NUM_THREADS``.
    """

    def __init__(self, xml: Path, shape: Sequence[int], threads: int) -> None:
        self.model = OpenVINOModel(xml, shape, threads, properties={"PERF_COUNT": True})
        self.reset()

    def reset(self) -> None:
        """Forget the calls so far (e.g. the warm-up)."""
        self.calls = 0
        self.seconds: dict[str, float] = {}
        self.layers: dict[str, set[str]] = {}
        self.kernels: dict[str, dict[str, float]] = {}

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model and add its per-layer times."""
        import openvino as ov  # noqa: PLC0415

        outputs = self.model(images)
        self.calls += 1
        for info in self.model.request.get_profiling_info():
            if info.status != ov.ProfilingInfo.Status.EXECUTED:
                continue
            time = info.real_time.total_seconds()
            self.seconds[info.node_type] = self.seconds.get(info.node_type, 0.0) + time
            self.layers.setdefault(info.node_type, set()).add(info.node_name)
            by_kernel = self.kernels.setdefault(info.node_type, {})
            by_kernel[info.exec_type] = by_kernel.get(info.exec_type, 0.0) + time
        return outputs

    def rows(self) -> list[dict[str, Any]]:
        """Per layer type: ms per call, share of the profiled time, layer count, most used kernel; largest first."""
        total = sum(self.seconds.values()) or float("nan")
        rows = [
            {
                "layer_type": layer_type,
                "ms": 1e3 * value / max(self.calls, 1),
                "share": value / total,
                "layers": len(self.layers[layer_type]),
                "main_kernel": max(self.kernels[layer_type], key=self.kernels[layer_type].__getitem__),
            }
            for layer_type, value in self.seconds.items()
        ]
        return sorted(rows, key=lambda row: -row["ms"])


__all__ = ["ProfiledOpenVINOModel"]
