"""The ``goals`` study at the smoke size: every reported number follows from the measured ones.

Checks relations, not values: a FLOP rate is FLOPs over the fastest call's time, a fraction of the peak is
that rate over the peak measured in the same run, a time-per-FLOP ratio is the ratio of those
quotients, images per second is the image count over the fastest run's time, and each verdict
follows its threshold.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from anomalib_ea2d.pipelines.benchmark import load_preset
from anomalib_ea2d.pipelines.benchmark.flops import peak_kernels
from anomalib_ea2d.pipelines.benchmark.goals import goal_checks, run_goals

pytestmark = pytest.mark.slow

MODEL_OF = {
    "ea2d": "ea2d",
    "ea2d_plain": "ea2d",
    "ea2d_plain_nchw": "ea2d",
    "reverse_distillation": "reverse_distillation",
    "torch_full": "ea2d",
    "openvino_fp32": "ea2d",
    "openvino_int8": "ea2d",
}


@pytest.fixture(scope="module")
def goals(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Any, Path]:
    output = tmp_path_factory.mktemp("goals")
    config = load_preset("smoke", tmp_path_factory.mktemp("brain"))["goals"]
    return run_goals(config, output), config, output


def test_flop_rates_and_fractions_follow_from_times_and_counts(goals: tuple[dict[str, Any], Any, Path]) -> None:
    result, config, _ = goals
    latency_s = {name: ms / 1e3 for name, ms in result["latency_ms_min"].items()}  # the fastest calls
    per_image = result["gflop_per_image"]
    assert per_image["ea2d"] > per_image["reverse_distillation"] > 0  # two views, two decoders
    for model, kinds in result["gflop_per_image_by_kind"].items():
        assert sum(kinds.values()) == pytest.approx(per_image[model])
        assert kinds["convolution"] > kinds.get("matmul", 0.0)
    for name, model in MODEL_OF.items():
        rate = per_image[model] * config.batch_size / latency_s[name]
        assert result["gflops"][name] == pytest.approx(rate)
        assert result["fraction_of_peak"][name] == pytest.approx(rate / result["peak_gflops"])
    time_per_flop = {name: latency_s[name] / per_image[MODEL_OF[name]] for name in MODEL_OF}
    rd = time_per_flop["reverse_distillation"]
    assert result["time_per_flop_over_rd"] == pytest.approx(time_per_flop["ea2d"] / rd)
    assert result["plain_time_per_flop_over_rd"] == pytest.approx(time_per_flop["ea2d_plain"] / rd)
    assert result["ea2d_over_rd"] == pytest.approx(latency_s["ea2d"] / latency_s["reverse_distillation"])
    assert result["channels_last_input_speedup"] == pytest.approx(
        latency_s["ea2d_plain_nchw"] / latency_s["ea2d_plain"]
    )


def test_peak_is_the_faster_reference_kernel_of_the_same_run(goals: tuple[dict[str, Any], Any, Path]) -> None:
    result, config, _ = goals
    kernels = peak_kernels(config.gemm_size, tuple(config.conv1x1))
    rates = {
        name: kernel.flops / (result["latency_ms_min"][f"peak_{name}"] / 1e3) / 1e9 for name, kernel in kernels.items()
    }
    assert result["peak_kernels_gflops"] == pytest.approx(rates)
    assert result["peak_gflops"] == pytest.approx(max(rates.values()))
    assert set(result["peak_kernels"]) == set(kernels)
    assert set(result["cpu_ms"]) == set(result["latency_ms"]) == set(result["latency_ms_min"])
    assert all(result["latency_ms_min"][name] <= median for name, median in result["latency_ms"].items())


def test_openvino_profile_and_predict_speed(goals: tuple[dict[str, Any], Any, Path]) -> None:
    result, config, _ = goals
    profile = result["openvino_fp32_profile"]
    assert sum(row["share"] for row in profile) == pytest.approx(1.0)
    assert [row["ms"] for row in profile] == sorted((row["ms"] for row in profile), reverse=True)
    (convolution,) = [row for row in profile if row["layer_type"] == "Convolution"]
    conv_flops = result["gflop_per_image_by_kind"]["ea2d"]["convolution"] * config.batch_size
    call_ms = sum(row["wall_ms"] for row in profile)
    assert convolution["wall_ms"] == pytest.approx(convolution["share"] * call_ms)
    assert convolution["gflops"] == pytest.approx(conv_flops / (convolution["wall_ms"] / 1e3))
    assert convolution["fraction_of_peak"] == pytest.approx(convolution["gflops"] / result["peak_gflops"])
    assert set(result["predict_seconds"]) == {"ea2d", "ea2d_plain", "reverse_distillation"}
    for name, seconds in result["predict_seconds"].items():
        assert len(seconds) == config.predict_rounds
        assert result["predict_images_per_s"][name] == pytest.approx(config.predict_images / min(seconds))
        assert min(seconds) <= statistics.median(seconds)


def test_verdicts_follow_the_thresholds_and_the_files_hold_them(goals: tuple[dict[str, Any], Any, Path]) -> None:
    result, config, output = goals
    t = config.thresholds
    expected = {
        f"ea2d_over_rd <= {t.max_ea2d_over_rd:g}": result["ea2d_over_rd"] <= t.max_ea2d_over_rd,
        f"time_per_flop_over_rd <= {t.max_time_per_flop_over_rd:g}": (
            result["time_per_flop_over_rd"] <= t.max_time_per_flop_over_rd
        ),
        f"plain_time_per_flop_over_rd <= {t.max_plain_time_per_flop_over_rd:g}": (
            result["plain_time_per_flop_over_rd"] <= t.max_plain_time_per_flop_over_rd
        ),
        f"openvino_fp32_fraction_of_peak >= {t.min_openvino_fp32_fraction_of_peak:g}": (
            result["fraction_of_peak"]["openvino_fp32"] >= t.min_openvino_fp32_fraction_of_peak
        ),
    }
    assert {key: result["goals"][key] for key in expected} == expected
    assert [key for key, *_ in goal_checks(result, t)] == list(result["goals"])
    assert json.loads((output / "goals.json").read_text())["goals"] == result["goals"]
    text = (output / "goals.md").read_text()
    for heading in (
        "| measurement | fastest (ms) |",
        "| FP32 peak kernel |",
        "| layer type |",
        "| model | fastest run",
    ):
        assert heading in text
