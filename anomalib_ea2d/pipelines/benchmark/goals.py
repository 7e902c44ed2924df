"""The ``goals`` study: the speed ratios EA2D is held to, measured in one process.

Torch eval latency of EA2D versus anomalib's Reverse Distillation model (same backbone and size),
the OpenVINO FP32/INT8 exports versus torch eager (the full anomalib graph), and the per-step
overhead of Lightning/anomalib training versus a plain torch loop over the same model. Variants
compared with each other are timed in alternation. The thresholds come from the preset
(``configs/benchmark/goal_thresholds.yaml``). Writes ``goals.json`` and ``goals.md``.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
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
from anomalib_ea2d.pipelines.benchmark.measure import StepTimer, interleaved, set_threads
from anomalib_ea2d.pipelines.benchmark.report import Table, fmt_range, write_study


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


def _torch_latency(config: GoalsConfig, module: EA2D, images: torch.Tensor) -> dict[str, list[float]]:
    """EA2DModel eval (``fuse()``d and plain modules) versus anomalib's ReverseDistillationModel, interleaved."""
    plain = module.model.eval()
    ea2d = plain.fuse()
    rd = ReverseDistillationModel(
        backbone=config.backbone,
        input_size=(config.image_size, config.image_size),
        layers=["layer1", "layer2", "layer3"],
        anomaly_map_mode=AnomalyMapGenerationMode.ADD,
        pre_trained=False,
    ).eval()
    randomise_eval_state(rd)
    normalized = module.pre_processor(images)

    def run(network: nn.Module) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                return network(normalized)

        return call

    return interleaved({"ea2d": run(ea2d), "reverse_distillation": run(rd), "ea2d_plain": run(plain)}, config.repeats)


def _openvino_latency(config: GoalsConfig, module: EA2D, images: torch.Tensor, output: Path) -> dict[str, list[float]]:
    """The EA2D Lightning forward in torch eager versus its OpenVINO FP32 and INT8 exports, interleaved."""
    threads = torch.get_num_threads()
    calibration = build_datamodule(config.calibration, output, config.batch_size, config.batch_size)
    fp32 = OpenVINOModel(export_openvino(module, output / "goals_openvino_fp32", int8=False), images.shape, threads)
    int8_xml = export_openvino(module, output / "goals_openvino_int8", int8=True, datamodule=calibration)
    int8 = OpenVINOModel(int8_xml, images.shape, threads)

    def full_torch() -> object:
        with torch.inference_mode():
            return module(images)

    return interleaved(
        {"torch_full": full_torch, "openvino_fp32": lambda: fp32(images), "openvino_int8": lambda: int8(images)},
        config.repeats,
    )


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
    return [
        (
            f"ea2d_over_rd <= {t.max_ea2d_over_rd:g}",
            f"EA2D / Reverse Distillation torch latency <= {t.max_ea2d_over_rd:g}",
            f"{r['ea2d_over_rd']:.2f} (plain modules: {r['ea2d_plain_over_rd']:.2f})",
            r["ea2d_over_rd"] <= t.max_ea2d_over_rd,
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
    samples = _torch_latency(config, module, images)
    samples |= _openvino_latency(config, module, images, output)
    lightning_steps, plain_steps = _training_steps(config, output)

    med = {name: statistics.median(values) for name, values in samples.items()}
    result: dict[str, Any] = {
        "backbone": config.backbone,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "threads": threads,
        "repeats": config.repeats,
        "latency_ms": {name: value * 1e3 for name, value in med.items()},
        "latency_ms_min": {name: min(values) * 1e3 for name, values in samples.items()},
        "latency_ms_max": {name: max(values) * 1e3 for name, values in samples.items()},
        "ea2d_over_rd": med["ea2d"] / med["reverse_distillation"],
        "ea2d_plain_over_rd": med["ea2d_plain"] / med["reverse_distillation"],
        "fast_path_speedup": med["ea2d_plain"] / med["ea2d"],
        "openvino_fp32_speedup": med["torch_full"] / med["openvino_fp32"],
        "openvino_int8_speedup": med["torch_full"] / med["openvino_int8"],
        "train_backbone": config.train_backbone,
        "train_image_size": config.train_image_size,
        "train_batch_size": config.train_batch_size,
        "lightning_step_ms": statistics.median(lightning_steps) * 1e3,
        "plain_step_ms": statistics.median(plain_steps) * 1e3,
        "lightning_over_plain": statistics.median(lightning_steps) / statistics.median(plain_steps),
    }
    checks = goal_checks(result, config.thresholds)
    result["goals"] = {key: met for key, _, _, met in checks}
    write_study(output, "goals", goals_tables(result, checks), json_files={"goals.json": result})
    return result


def goals_tables(result: dict[str, Any], checks: Sequence[tuple[str, str, str, bool]]) -> list[Table]:
    """The measured latencies and the goals with their verdicts."""
    latency, low, high = result["latency_ms"], result["latency_ms_min"], result["latency_ms_max"]
    measurements = {
        "ea2d": "EA2DModel.fuse() eval (BatchNorm folded, channels-last)",
        "ea2d_plain": "EA2DModel eval, plain modules",
        "reverse_distillation": "anomalib ReverseDistillationModel eval",
        "torch_full": "EA2D Lightning forward (pre/post-processing), torch eager",
        "openvino_fp32": "same graph, OpenVINO FP32 (`INFERENCE_PRECISION_HINT=f32`)",
        "openvino_int8": "same graph, OpenVINO INT8 (PTQ)",
    }
    latencies = Table(
        header=["measurement", "latency (ms)"],
        rows=[[text, fmt_range(latency[name], low[name], high[name])] for name, text in measurements.items()],
        caption=f"{result['backbone']}, {result['image_size']} px, batch {result['batch_size']}, "
        f"{result['threads']} CPU threads; median of {result['repeats']} interleaved calls [min-max], ms.",
    )
    verdicts = Table(
        header=["goal", "measured", "met"],
        rows=[[text, measured, "yes" if met else "no"] for _, text, measured, met in checks],
    )
    return [latencies, verdicts]


__all__ = ["goal_checks", "goals_tables", "run_goals"]
