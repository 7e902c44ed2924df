"""The ``goals`` study: the speed ratios EA2D is held to, measured in one process.

Torch eval latency and FLOPs per image of EA2D — as ``Engine.test``/``predict`` run it (the fused
inference copy) and as ``EA2DModel(...).eval()`` — versus anomalib's Reverse Distillation model
(same backbone and size), and their time per FLOP; the machine's FP32 peak, measured in the same
run with two large dense kernels (:mod:`~anomalib_ea2d.pipelines.benchmark.flops`), and every path's FLOP/s
as a fraction of it; the OpenVINO FP32/INT8 exports versus torch eager (the full anomalib graph),
with OpenVINO's per-layer profile of the FP32 model (:mod:`~anomalib_ea2d.pipelines.benchmark.openvino_profile`);
``anomalib predict`` images per second for EA2D and Reverse Distillation
(:mod:`~anomalib_ea2d.pipelines.benchmark.predict_speed`); and the per-step overhead of Lightning/anomalib
training versus a plain torch loop over the same model. Variants compared with each other are
timed in alternation. The thresholds come from the preset
(``configs/benchmark/goal_thresholds.yaml``). Writes ``goals.json`` and ``goals.md``.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from anomalib.models import AnomalibModule, ReverseDistillation
from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerationMode
from anomalib.models.image.reverse_distillation.torch_model import ReverseDistillationModel
from lightning.pytorch import seed_everything
from torch import nn

from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D
from anomalib_ea2d.pipelines.benchmark.backends import OpenVINOModel, export_openvino
from anomalib_ea2d.pipelines.benchmark.builders import (
    build_datamodule,
    build_engine,
    quiet_lightning,
    randomise_eval_state,
)
from anomalib_ea2d.pipelines.benchmark.config import GoalsConfig, GoalThresholds
from anomalib_ea2d.pipelines.benchmark.flops import CONVOLUTION, MATMUL, count_flops, measured_peak, peak_kernels
from anomalib_ea2d.pipelines.benchmark.goals_report import efficiency_tables
from anomalib_ea2d.pipelines.benchmark.measure import StepTimer, interleaved, set_threads
from anomalib_ea2d.pipelines.benchmark.openvino_profile import ProfiledOpenVINOModel
from anomalib_ea2d.pipelines.benchmark.predict_speed import calibrate, predict_seconds, write_predict_images
from anomalib_ea2d.pipelines.benchmark.report import Table, fmt, write_study


def _plain_training_step_seconds(model: EA2D, batches: Sequence[torch.Tensor], steps: int) -> list[float]:
    """Seconds per step of a hand-written loop doing what EA2D's Lightning step does (two untimed steps first)."""
    optimizer = model.configure_optimizers()
    clip = model.hparams.gradient_clip_norm
    transform = model.pre_processor.transform
    network, loss = model.model, model.loss
    network.train()
    samples = []
    for index in range(steps + 2):
        images = batches[index % len(batches)]
        start = time.perf_counter()
        inputs = transform(images)
        value = loss(network(inputs))
        optimizer.zero_grad()
        value.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(network.parameters(), clip)
        optimizer.step()
        if index >= 2:
            samples.append(time.perf_counter() - start)
    return samples


def _reverse_distillation(config: GoalsConfig) -> nn.Module:
    """Anomalib's ReverseDistillationModel at the study's backbone and size, eval mode, trained-like statistics."""
    rd = ReverseDistillationModel(
        backbone=config.backbone,
        input_size=(config.image_size, config.image_size),
        layers=["layer1", "layer2", "layer3"],
        anomaly_map_mode=AnomalyMapGenerationMode.ADD,
        pre_trained=False,
    ).eval()
    return randomise_eval_state(rd)


def _nchw_copy(model: nn.Module) -> nn.Module:
    """A copy of the plain EA2D network that keeps its eval input NCHW (``channels_last_eval = False``)."""
    nchw = copy.deepcopy(model).eval()
    nchw.channels_last_eval = False
    return nchw


def _run(network: nn.Module, inputs: torch.Tensor) -> Callable[[], object]:
    def call() -> object:
        with torch.inference_mode():
            return network(inputs)

    return call


def _timed_calls(
    config: GoalsConfig, module: EA2D, networks: dict[str, nn.Module], images: torch.Tensor, output: Path
) -> tuple[dict[str, Callable[[], object]], ProfiledOpenVINOModel]:
    """Every call the inference goals compare, to be timed in one interleaved loop; and the profiled FP32 model.

    The torch networks on pre-processed images; EA2D's full graph as ``Engine.predict`` runs it
    (pre-processing, the fused copy, post-processing; the copy is made here, released by the
    caller) and its OpenVINO FP32 and INT8 exports; the FP32 export once more with performance
    counters; the FP32 peak kernels.
    """
    threads = torch.get_num_threads()
    calibration = build_datamodule(config.calibration, output, config.batch_size, config.batch_size)
    fp32_xml = export_openvino(module, output / "goals_openvino_fp32", int8=False)
    fp32 = OpenVINOModel(fp32_xml, images.shape, threads)
    int8_xml = export_openvino(module, output / "goals_openvino_int8", int8=True, datamodule=calibration)
    int8 = OpenVINOModel(int8_xml, images.shape, threads)
    profiled = ProfiledOpenVINOModel(fp32_xml, images.shape, threads)
    normalized = module.pre_processor(images)
    module.start_inference()  # the fused copy Engine.predict's steps run

    def full_torch() -> object:
        with torch.inference_mode():
            return module.post_processor(module.inference_model(module.pre_processor(images)))

    calls = {name: _run(network, normalized) for name, network in networks.items()}
    calls |= {"torch_full": full_torch, "openvino_fp32": lambda: fp32(images), "openvino_int8": lambda: int8(images)}
    calls["openvino_fp32_profiled"] = lambda: profiled(images)
    kernels = peak_kernels(config.gemm_size, config.conv1x1)
    calls |= {f"peak_{name}": kernel.call for name, kernel in kernels.items()}
    return calls, profiled


def _predict_speed(config: GoalsConfig, module: EA2D, output: Path) -> dict[str, list[float]]:
    """Seconds of ``Engine.predict(data_path=folder)`` for EA2D (fused and plain) and Reverse Distillation."""
    calibration = build_datamodule(config.calibration, output, config.batch_size, config.batch_size)
    folder = write_predict_images(output / "goals_predict", config.predict_images, config.image_size)
    size = config.image_size
    ea2d = EA2D(backbone=config.backbone, pre_trained=False, image_size=size)
    ea2d.model.load_state_dict(module.model.state_dict())
    rd = ReverseDistillation(
        backbone=config.backbone, pre_trained=False, pre_processor=AnomalibModule.configure_pre_processor((size, size))
    )
    randomise_eval_state(rd.model)
    for name, model in (("ea2d", ea2d), ("reverse_distillation", rd)):
        calibrate(model, calibration, output / "goals_predict" / f"calibrate_{name}")
    plain = EA2D(backbone=config.backbone, pre_trained=False, image_size=size, inference_path="plain")
    plain.load_state_dict(ea2d.state_dict())
    models = {"ea2d": ea2d, "ea2d_plain": plain, "reverse_distillation": rd}
    return predict_seconds(models, folder, config.predict_rounds, output / "goals_predict" / "runs")


def _training_steps(config: GoalsConfig, output: Path) -> tuple[list[float], list[float]]:
    """Seconds per step of EA2D trained by anomalib's Engine and by a plain torch loop, twice each, alternating."""
    seed_everything(0)
    train_data = build_datamodule(config.data, output, config.train_batch_size, config.train_batch_size)
    train_data.setup("fit")
    loader = iter(train_data.train_dataloader())
    batches = [next(loader).image for _ in range(min(4, len(train_data.train_dataloader())))]
    model = EA2D(
        backbone=config.train_backbone,
        pre_trained=False,
        image_size=config.train_image_size,
        visualizer=False,
        evaluator=False,
    )
    start_state = copy.deepcopy(model.state_dict())
    lightning_steps: list[float] = []
    plain_steps: list[float] = []
    for _ in range(2):
        model.load_state_dict(start_state)
        timer = StepTimer()
        engine = build_engine(output / "goals_train", "ea2d", config.train_steps + 2, [timer])
        engine.fit(model=model, train_dataloaders=train_data.train_dataloader())
        lightning_steps += timer.samples[2:]
        model.load_state_dict(start_state)
        plain_steps += _plain_training_step_seconds(model, batches, config.train_steps)
    return lightning_steps, plain_steps


def goal_checks(result: dict[str, Any], thresholds: GoalThresholds) -> list[tuple[str, str, str, bool]]:
    """Each goal as ``(key, description, measured, met)``; ``key`` names the goal in ``goals.json``."""
    t, r = thresholds, result
    fp32_fraction = r["fraction_of_peak"]["openvino_fp32"]
    return [
        (
            f"ea2d_over_rd <= {t.max_ea2d_over_rd:g}",
            f"EA2D (as Engine runs it) / Reverse Distillation torch latency <= {t.max_ea2d_over_rd:g}",
            f"{r['ea2d_over_rd']:.2f} (`EA2DModel(...).eval()`: {r['ea2d_plain_over_rd']:.2f})",
            r["ea2d_over_rd"] <= t.max_ea2d_over_rd,
        ),
        (
            f"time_per_flop_over_rd <= {t.max_time_per_flop_over_rd:g}",
            f"EA2D (as Engine runs it) / Reverse Distillation time per FLOP <= {t.max_time_per_flop_over_rd:g}",
            f"{r['time_per_flop_over_rd']:.2f}",
            r["time_per_flop_over_rd"] <= t.max_time_per_flop_over_rd,
        ),
        (
            f"plain_time_per_flop_over_rd <= {t.max_plain_time_per_flop_over_rd:g}",
            f"`EA2DModel(...).eval()` / Reverse Distillation time per FLOP <= {t.max_plain_time_per_flop_over_rd:g}",
            f"{r['plain_time_per_flop_over_rd']:.2f}",
            r["plain_time_per_flop_over_rd"] <= t.max_plain_time_per_flop_over_rd,
        ),
        (
            f"openvino_fp32_fraction_of_peak >= {t.min_openvino_fp32_fraction_of_peak:g}",
            f"OpenVINO FP32 FLOP/s / measured FP32 peak >= {t.min_openvino_fp32_fraction_of_peak:g}",
            f"{fp32_fraction:.2f} ({r['gflops']['openvino_fp32']:.0f} of {r['peak_gflops']:.0f} GFLOP/s)",
            fp32_fraction >= t.min_openvino_fp32_fraction_of_peak,
        ),
        (
            f"openvino_fp32_speedup >= {t.min_openvino_fp32_speedup:g}",
            f"OpenVINO FP32 speed-up over torch eager >= {t.min_openvino_fp32_speedup:g}",
            f"{r['openvino_fp32_speedup']:.2f}",
            r["openvino_fp32_speedup"] >= t.min_openvino_fp32_speedup,
        ),
        (
            f"openvino_int8_speedup >= {t.min_openvino_int8_speedup:g}",
            f"OpenVINO INT8 speed-up over torch eager >= {t.min_openvino_int8_speedup:g}",
            f"{r['openvino_int8_speedup']:.2f}",
            r["openvino_int8_speedup"] >= t.min_openvino_int8_speedup,
        ),
        (
            f"lightning_over_plain <= {t.max_lightning_over_plain:g}",
            f"Lightning step / plain torch step <= {t.max_lightning_over_plain:g} ({r['train_backbone']}, "
            f"{r['train_image_size']} px, batch {r['train_batch_size']}: {r['lightning_step_ms']:.0f} vs "
            f"{r['plain_step_ms']:.0f} ms)",
            f"{r['lightning_over_plain']:.2f}",
            r["lightning_over_plain"] <= t.max_lightning_over_plain,
        ),
    ]


@quiet_lightning()
def run_goals(config: GoalsConfig, output: Path) -> dict[str, Any]:
    """Measure the speed goals in one process; writes ``goals.json`` and ``goals.md``."""
    output.mkdir(parents=True, exist_ok=True)
    threads = set_threads(config.threads)
    torch.manual_seed(0)
    images = torch.rand(config.batch_size, 3, config.image_size, config.image_size)
    module = EA2D(backbone=config.backbone, pre_trained=False, image_size=config.image_size, visualizer=False).eval()
    randomise_eval_state(module.model)
    normalized = module.pre_processor(images)
    networks = {
        "ea2d": module.model.fuse(),
        "ea2d_plain": module.model,
        "ea2d_plain_nchw": _nchw_copy(module.model),
        "reverse_distillation": _reverse_distillation(config),
    }
    flops = {name: count_flops(_run(networks[name], normalized)) for name in ("ea2d_plain", "reverse_distillation")}
    calls, profiled = _timed_calls(config, module, networks, images, output)
    cpu: dict[str, list[float]] = {}
    load = {"inference_start": os.getloadavg()}
    try:
        for call in calls.values():  # warm-up, outside the profile
            call()
        profiled.reset()
        samples = interleaved(calls, config.repeats, warmup=0, cpu_seconds=cpu)
    finally:
        module.end_inference()
    load["inference_end"] = os.getloadavg()
    predict = _predict_speed(config, module, output)
    load["predict_end"] = os.getloadavg()
    lightning_steps, plain_steps = _training_steps(config, output)
    load["training_end"] = os.getloadavg()

    # The fastest of the interleaved calls: on a shared machine the call least disturbed by other processes.
    best = {name: min(values) for name, values in samples.items()}
    kernels = peak_kernels(config.gemm_size, config.conv1x1)
    peak, kernel_rates = measured_peak({name: best[f"peak_{name}"] for name in kernels}, kernels)
    per_image = {"ea2d": flops["ea2d_plain"].total / config.batch_size}
    per_image["reverse_distillation"] = flops["reverse_distillation"].total / config.batch_size
    model_of = {
        "ea2d": "ea2d",
        "ea2d_plain": "ea2d",
        "ea2d_plain_nchw": "ea2d",
        "reverse_distillation": "reverse_distillation",
    }
    model_of |= {"torch_full": "ea2d", "openvino_fp32": "ea2d", "openvino_int8": "ea2d"}
    gflops = {name: per_image[model] * config.batch_size / best[name] / 1e9 for name, model in model_of.items()}
    time_per_flop = {name: best[name] / per_image[model] for name, model in model_of.items()}
    result: dict[str, Any] = {
        "backbone": config.backbone,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "threads": threads,
        "repeats": config.repeats,
        "statistic": "fastest of the interleaved calls (latency_ms_min); latency_ms: medians",
        "latency_ms": {name: statistics.median(values) * 1e3 for name, values in samples.items()},
        "latency_ms_min": {name: min(values) * 1e3 for name, values in samples.items()},
        "latency_ms_max": {name: max(values) * 1e3 for name, values in samples.items()},
        "cpu_ms": {name: statistics.median(values) * 1e3 for name, values in cpu.items()},
        "gflop_per_image": {name: value / 1e9 for name, value in per_image.items()},
        "gflop_per_image_by_kind": {
            model_of[name]: {kind: value / config.batch_size / 1e9 for kind, value in count.by_kind.items()}
            for name, count in flops.items()
        },
        "peak_kernels": {name: kernel.description for name, kernel in kernels.items()},
        "peak_kernels_gflops": {name: rate / 1e9 for name, rate in kernel_rates.items()},
        "peak_gflops": peak / 1e9,
        "gflops": gflops,
        "fraction_of_peak": {name: rate * 1e9 / peak for name, rate in gflops.items()},
        "ea2d_over_rd": best["ea2d"] / best["reverse_distillation"],
        "ea2d_plain_over_rd": best["ea2d_plain"] / best["reverse_distillation"],
        "time_per_flop_over_rd": time_per_flop["ea2d"] / time_per_flop["reverse_distillation"],
        "plain_time_per_flop_over_rd": time_per_flop["ea2d_plain"] / time_per_flop["reverse_distillation"],
        "fast_path_speedup": best["ea2d_plain"] / best["ea2d"],
        "channels_last_input_speedup": best["ea2d_plain_nchw"] / best["ea2d_plain"],
        "openvino_fp32_speedup": best["torch_full"] / best["openvino_fp32"],
        "openvino_int8_speedup": best["torch_full"] / best["openvino_int8"],
        "openvino_fp32_profile": _with_flop_rates(profiled.rows(), flops["ea2d_plain"].by_kind, peak),
        "load_average": load,
        "predict_images": config.predict_images,
        "predict_seconds": predict,
        "predict_images_per_s": {name: config.predict_images / min(values) for name, values in predict.items()},
        "train_backbone": config.train_backbone,
        "train_image_size": config.train_image_size,
        "train_batch_size": config.train_batch_size,
        "lightning_step_ms": statistics.median(lightning_steps) * 1e3,
        "plain_step_ms": statistics.median(plain_steps) * 1e3,
        "lightning_over_plain": statistics.median(lightning_steps) / statistics.median(plain_steps),
    }
    checks = goal_checks(result, config.thresholds)
    result["goals"] = {key: met for key, _, _, met in checks}
    latencies, verdicts = goals_tables(result, checks)
    write_study(output, "goals", [latencies, *efficiency_tables(result), verdicts], json_files={"goals.json": result})
    return result


def _with_flop_rates(rows: list[dict[str, Any]], by_kind: dict[str, float], peak: float) -> list[dict[str, Any]]:
    """The profile rows, with GFLOP/s and fraction of the peak for the layer types whose FLOPs are known.

    ``Convolution`` layers do the convolution FLOPs and ``MatMul`` layers the matrix products (per
    call of the profiled batch; OpenVINO fuses the rest of the arithmetic into them or runs it in
    layers that do no counted FLOPs), over the time they account for in the call (``wall_ms``).
    """
    kinds = {"Convolution": CONVOLUTION, "MatMul": MATMUL}
    for row in rows:
        kind = kinds.get(row["layer_type"])
        if kind in by_kind and row["wall_ms"] > 0:
            row["gflops"] = by_kind[kind] / (row["wall_ms"] / 1e3) / 1e9
            row["fraction_of_peak"] = row["gflops"] * 1e9 / peak
    return rows


def goals_tables(result: dict[str, Any], checks: Sequence[tuple[str, str, str, bool]]) -> list[Table]:
    """The measured latencies (with FLOP rates) and the goals with their verdicts."""
    median, best, high = result["latency_ms"], result["latency_ms_min"], result["latency_ms_max"]
    measurements = {
        "ea2d": "EA2D as `Engine.test`/`predict` run it: `EA2DModel.fuse()` copy (BatchNorm folded, channels-last)",
        "ea2d_plain": "`EA2DModel(...).eval()`: plain modules (channels-last input)",
        "ea2d_plain_nchw": "the same with `channels_last_eval = False` (NCHW input, as in training)",
        "reverse_distillation": "anomalib ReverseDistillationModel eval",
        "torch_full": "EA2D full graph (pre-processing, fused copy, post-processing), torch eager",
        "openvino_fp32": "same graph exported, OpenVINO FP32 (`INFERENCE_PRECISION_HINT=f32`)",
        "openvino_int8": "same graph exported, OpenVINO INT8 (PTQ)",
    }
    model_of = {name: "reverse_distillation" if name == "reverse_distillation" else "ea2d" for name in measurements}
    rd_time_per_flop = best["reverse_distillation"] / result["gflop_per_image"]["reverse_distillation"]
    latencies = Table(
        header=[
            "measurement",
            "fastest (ms)",
            "median [slowest] (ms)",
            "GFLOP/image",
            "GFLOP/s",
            "of FP32 peak",
            "time per FLOP / RD",
        ],
        rows=[
            [
                text,
                fmt(best[name], 0),
                f"{fmt(median[name], 0)} [{fmt(high[name], 0)}]",
                fmt(result["gflop_per_image"][model_of[name]], 1),
                fmt(result["gflops"][name], 0),
                f"{100 * result['fraction_of_peak'][name]:.0f} %",
                fmt(best[name] / result["gflop_per_image"][model_of[name]] / rd_time_per_flop, 2),
            ]
            for name, text in measurements.items()
        ],
        caption=f"{result['backbone']}, {result['image_size']} px, batch {result['batch_size']}, "
        f"{result['threads']} CPU threads; {result['repeats']} calls of each, timed in alternation with each other "
        "and with the peak kernels. Rates and ratios use each one's fastest call (on a shared machine, the call "
        "least disturbed by other processes); medians and CPU times are in goals.json. FLOPs counted by torch's "
        f"FlopCounterMode (convolutions and matrix products); measured FP32 peak {result['peak_gflops']:.0f} "
        "GFLOP/s (table below). INT8: FP32-equivalent FLOP/s.",
    )
    verdicts = Table(
        header=["goal", "measured", "met"],
        rows=[[text, measured, "yes" if met else "no"] for _, text, measured, met in checks],
    )
    return [latencies, verdicts]


__all__ = ["goal_checks", "goals_tables", "run_goals"]
