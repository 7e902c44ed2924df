"""Where an OpenVINO model's time goes: its per-layer performance counters, summed by layer type.

The model is compiled as the benchmark compiles it (:class:`~anomalib_ea2d.benchmark.backends.OpenVINOModel`)
with ``PERF_COUNT`` on; after one warm-up call, every executed layer's real time
(``InferRequest.get_profiling_info()``) is summed over ``calls`` calls by its type (``Convolution``,
``MatMul``, ``Eltwise``, ``Interpolate``, ...). The layer types are those of OpenVINO's CPU plugin
after its graph transformations (BatchNorms folded, activations and additions fused into the
convolutions where it can).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from anomalib_ea2d.benchmark.backends import OpenVINOModel


def openvino_profile(xml: Path, shape: Sequence[int], threads: int, calls: int) -> list[dict[str, Any]]:
    """Per layer type: milliseconds per call, share of the profiled time, layer count, most used kernel.

    Rows are sorted by time, largest first.

    Args:
        xml: Path of the exported ``model.xml``.
        shape: Input shape it is compiled for.
        threads: ``INFERENCE_NUM_THREADS``.
        calls: Profiled calls (after one warm-up call).
    """
    import openvino as ov  # noqa: PLC0415

    model = OpenVINOModel(xml, shape, threads, properties={"PERF_COUNT": True})
    images = torch.rand(tuple(shape))
    model(images)
    seconds: dict[str, float] = {}
    layers: dict[str, set[str]] = {}
    kernels: dict[str, dict[str, float]] = {}
    for _ in range(calls):
        model(images)
        for info in model.request.get_profiling_info():
            if info.status != ov.ProfilingInfo.Status.EXECUTED:
                continue
            time = info.real_time.total_seconds()
            seconds[info.node_type] = seconds.get(info.node_type, 0.0) + time
            layers.setdefault(info.node_type, set()).add(info.node_name)
            by_kernel = kernels.setdefault(info.node_type, {})
            by_kernel[info.exec_type] = by_kernel.get(info.exec_type, 0.0) + time
    total = sum(seconds.values()) or float("nan")
    rows = [
        {
            "layer_type": layer_type,
            "ms": 1e3 * value / calls,
            "share": value / total,
            "layers": len(layers[layer_type]),
            "main_kernel": max(kernels[layer_type], key=kernels[layer_type].__getitem__),
        }
        for layer_type, value in seconds.items()
    ]
    return sorted(rows, key=lambda row: -row["ms"])


__all__ = ["openvino_profile"]
