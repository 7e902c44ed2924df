"""Tables of the ``goals`` study beyond its latencies: the measured peak, OpenVINO's profile, ``anomalib predict``.

Each function reads the study's result dictionary (``goals.json``) and returns
:class:`~anomalib_ea2d.pipelines.benchmark.report.Table` objects.
"""

from __future__ import annotations

import statistics
from typing import Any

from anomalib_ea2d.pipelines.benchmark.report import Table, fmt

PREDICT_NAMES = {
    "ea2d": "EA2D (`inference_path: fused`, the default)",
    "ea2d_plain": "EA2D (`--model.inference_path plain`)",
    "reverse_distillation": "anomalib ReverseDistillation",
}


def peak_table(result: dict[str, Any]) -> Table:
    """The dense kernels that measured the FP32 peak, with their FLOP/s."""
    rows = [
        [
            description,
            fmt(result["latency_ms_min"][f"peak_{name}"], 1),
            f"{fmt(result['latency_ms'][f'peak_{name}'], 1)} [{fmt(result['latency_ms_max'][f'peak_{name}'], 1)}]",
            fmt(result["peak_kernels_gflops"][name], 0),
        ]
        for name, description in result["peak_kernels"].items()
    ]
    return Table(
        header=["FP32 peak kernel", "fastest (ms)", "median [slowest] (ms)", "GFLOP/s"],
        rows=rows,
        caption="Measured FP32 peak: the faster of two large dense kernels timed in alternation with the models "
        f"above, {result['threads']} threads: **{result['peak_gflops']:.0f} GFLOP/s**.",
    )


def profile_table(result: dict[str, Any]) -> Table:
    """OpenVINO FP32's time by layer type (its performance counters), with FLOP rates where known."""
    rows = [
        [
            row["layer_type"],
            f"{100 * row['share']:.1f} %",
            fmt(row["wall_ms"], 1),
            fmt(row["ms"], 1),
            str(row["layers"]),
            f"`{row['main_kernel']}`",
            fmt(row.get("gflops", float("nan")), 0),
            f"{100 * row['fraction_of_peak']:.0f} %" if "fraction_of_peak" in row else "-",
        ]
        for row in result["openvino_fp32_profile"]
    ]
    profile = result["openvino_fp32_profile"]
    call_ms = sum(row["wall_ms"] for row in profile)
    layers_ms = sum(row["ms"] for row in profile)
    return Table(
        header=[
            "layer type",
            "share",
            "of the call (ms)",
            "layer time (ms)",
            "layers",
            "main kernel",
            "GFLOP/s",
            "of FP32 peak",
        ],
        rows=rows,
        caption=f"Where OpenVINO FP32's time goes: its performance counters (`PERF_COUNT`) in the fastest of "
        f"{result['repeats']} profiled calls of batch {result['batch_size']}, timed in alternation with the rows "
        f"above (with the counters on, the fastest call took {result['latency_ms_min']['openvino_fp32_profiled']:.0f}"
        f" ms, without {result['latency_ms_min']['openvino_fp32']:.0f} ms). Real time of every executed layer, "
        f"summed by type: {layers_ms:.0f} ms in all for a call of {call_ms:.0f} ms; share: of "
        "that sum; of the call: that share of the call's time. GFLOP/s: the convolution FLOPs (torch's count) "
        "over the `Convolution` layers' part of the call (and matrix products over `MatMul`'s). `Subgraph`: "
        "chains of layers OpenVINO compiles into one kernel — EA2D's four attention blocks (MatMul, Softmax, "
        "MatMul: the matrix products are there) and element-wise chains.",
    )


def predict_table(result: dict[str, Any]) -> Table:
    """``anomalib predict`` images per second for each model."""
    rows = []
    for name, seconds in result["predict_seconds"].items():
        rows.append(
            [
                PREDICT_NAMES.get(name, name),
                fmt(min(seconds), 1),
                f"{fmt(statistics.median(seconds), 1)} [{fmt(max(seconds), 1)}]",
                fmt(result["predict_images_per_s"][name], 2),
            ]
        )
    return Table(
        header=["model", "fastest run (s)", "median [slowest] (s)", "images/s"],
        rows=rows,
        caption=f"`anomalib predict --data FOLDER` speed: `Engine.predict(model, data_path=FOLDER)` on "
        f"{result['predict_images']} PNG images of {result['image_size']} px (batch 1, as the command loads them; "
        "pre-processing, network, post-processing, one visualisation PNG written per image), models built in "
        "the process and calibrated by one validation first; "
        f"{len(next(iter(result['predict_seconds'].values())))} runs per model in alternation; images/s from the "
        "fastest.",
    )


def efficiency_tables(result: dict[str, Any]) -> list[Table]:
    """The peak, OpenVINO's profile and the ``anomalib predict`` speeds."""
    return [peak_table(result), profile_table(result), predict_table(result)]


__all__ = ["efficiency_tables", "peak_table", "predict_table", "profile_table"]
