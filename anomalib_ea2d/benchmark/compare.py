"""The ``compare`` study: EA2D next to anomalib's PatchCore and Reverse Distillation.

Each model is trained and tested with anomalib's :class:`~anomalib.engine.Engine` on the same
synthetic brain-MRI data, input size and ResNet backbone, with one shared evaluator (image
AUROC/F1, pixel AUROC/AUPRO/PRO); then timed at several batch sizes in torch eager, OpenVINO FP32
and OpenVINO INT8, with the accuracy of each back-end recomputed on its own outputs, its peak RSS
and its size on disk. Every model runs in a fresh process (unless ``isolate=False``), so peak RSS
is the model's own. Writes ``compare.csv``, ``compare_timings.csv``, ``compare.md``, ``compare.png``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from lightning.pytorch import seed_everything

from anomalib_ea2d.benchmark.backends import build_predictors
from anomalib_ea2d.benchmark.builders import (
    build_datamodule,
    build_engine,
    build_model,
    images_for,
    load_test_batches,
    quiet_lightning,
)
from anomalib_ea2d.benchmark.config import CompareConfig
from anomalib_ea2d.benchmark.measure import PeakRSS, StepTimer, set_threads, summarize, time_calls
from anomalib_ea2d.benchmark.metrics import METRIC_KEYS, METRIC_LABELS, compute_metrics
from anomalib_ea2d.benchmark.report import Point, Table, fmt, fmt_range, write_scatter, write_study

logger = logging.getLogger(__name__)

_MARKERS = {"torch": "o", "openvino-fp32": "s", "openvino-int8": "^"}


def _fit_and_test(name: str, config: CompareConfig, output: Path, work: Path) -> tuple[Any, Any, dict[str, Any]]:
    """Train and test one model with anomalib's Engine; return the model, the datamodule and the summary row."""
    seed_everything(config.seed, workers=True)
    datamodule = build_datamodule(config.data, output, config.train_batch_size, config.eval_batch_size)
    model = build_model(name, config.backbone, config.data.image_size, config.train_steps)
    timer = StepTimer()
    engine = build_engine(work, name, config.train_steps, [timer])
    with PeakRSS() as train_rss:
        start = time.perf_counter()
        engine.fit(model=model, datamodule=datamodule)
        fit_seconds = time.perf_counter() - start
    test_metrics = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    missing = [key for key in METRIC_KEYS if key not in test_metrics]
    if missing:
        msg = f"{name}: engine.test reported no {missing}; the test set must hold normal and lesion slices with masks."
        raise RuntimeError(msg)
    step = summarize(timer.samples[1:] or timer.samples)  # the first step includes one-off set-up
    row: dict[str, Any] = {
        "model": name,
        "backbone": config.backbone,
        "image_size": config.data.image_size,
        "train_steps": len(timer.samples),
        "train_batch_size": config.train_batch_size,
        "fit_s": fit_seconds,
        "step_ms": step["median"] * 1e3,
        "step_ms_min": step["min"] * 1e3,
        "step_ms_max": step["max"] * 1e3,
        "train_peak_rss_mib": train_rss.mib,
        **{key: float(test_metrics[key]) for key in METRIC_KEYS},
    }
    return model, datamodule, row


@quiet_lightning()
def benchmark_model(name: str, config: CompareConfig, output: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train, test, export and time one model; return its summary row and its raw timing samples."""
    set_threads(config.threads)
    work = output / "work" / name
    work.mkdir(parents=True, exist_ok=True)
    model, datamodule, row = _fit_and_test(name, config, output, work)
    model.eval()
    batches = load_test_batches(datamodule)
    timing_images = images_for(batches, max(config.batch_sizes))
    image_shape = tuple(batches[0].image.shape[1:])
    predictors, sizes = build_predictors(model, config.backends, work, image_shape, datamodule)
    row.update(sizes)
    samples: list[dict[str, Any]] = []
    for backend, predict in predictors.items():
        accuracy = compute_metrics([predict(batch.image) for batch in batches], batches)
        row.update({f"{backend}_{key}": value for key, value in accuracy.items()})
        for batch_size in config.batch_sizes:
            images = timing_images[:batch_size]
            predict(images)  # compiles OpenVINO for this shape outside the memory and time measurements
            with PeakRSS() as rss:
                seconds = time_calls(lambda: predict(images), repeats=config.repeats, warmup=config.warmup)  # noqa: B023
            summary = summarize(seconds)
            prefix = f"{backend}_b{batch_size}"
            row[f"{prefix}_ips"] = batch_size / summary["median"]
            row[f"{prefix}_ips_min"] = batch_size / summary["max"]
            row[f"{prefix}_ips_max"] = batch_size / summary["min"]
            row[f"{prefix}_latency_ms"] = summary["median"] * 1e3
            row[f"{prefix}_peak_rss_mib"] = rss.mib
            samples += [
                {"model": name, "backend": backend, "batch_size": batch_size, "repeat": index, "seconds": value}
                for index, value in enumerate(seconds)
            ]
    return row, samples


def _run_isolated(function: Callable, *args: Any) -> Any:  # noqa: ANN401
    """Run ``function(*args)`` in a fresh Python process (its peak RSS is its own)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def run_compare(config: CompareConfig, output: Path, isolate: bool = True) -> list[dict[str, Any]]:
    """Run the ``compare`` study; writes ``compare.csv``, ``compare_timings.csv``, ``compare.md``, ``compare.png``."""
    output.mkdir(parents=True, exist_ok=True)
    # Generate the data once, before any model is timed.
    build_datamodule(config.data, output, config.train_batch_size, config.eval_batch_size).prepare_data()
    rows, samples = [], []
    for name in config.models:
        logger.info("compare: %s", name)
        row, model_samples = (
            _run_isolated(benchmark_model, name, config, output) if isolate else benchmark_model(name, config, output)
        )
        rows.append(row)
        samples += model_samples
    write_study(
        output,
        "compare",
        compare_tables(rows, config),
        csv={"compare.csv": rows, "compare_timings.csv": samples},
    )
    batch = min(config.batch_sizes)
    write_scatter(
        output / "compare.png",
        [
            Point(
                x=row[f"{backend}_b{batch}_latency_ms"],
                y=row[f"{backend}_image_AUROC"],
                label=f"{row['model']} / {backend}",
                marker=_MARKERS.get(backend, "x"),
                colour=f"C{index}",
            )
            for index, row in enumerate(rows)
            for backend in config.backends
        ],
        xlabel=f"latency at batch {batch} (ms, log scale)",
        ylabel="image AUROC (synthetic brain set)",
        title=f"{config.backbone}, {config.data.image_size} px, {config.threads or os.cpu_count()} CPU threads",
        log_x=True,
    )
    return rows


def compare_tables(rows: Sequence[dict[str, Any]], config: CompareConfig) -> list[Table]:
    """Accuracy and training cost per model; speed, accuracy, memory and size per model and back-end."""
    training = Table(
        header=[
            "model",
            *(METRIC_LABELS[key] for key in METRIC_KEYS),
            "fit (s)",
            "step (ms, median [min-max])",
            "train peak RSS (MiB)",
        ],
        caption=f"Backbone {config.backbone} (random init), input {config.data.image_size} px, "
        f"{config.train_steps} training steps of batch {config.train_batch_size} "
        "(PatchCore: one epoch to fill its memory bank). Accuracy from anomalib's `Engine.test`.",
    )
    for row in rows:
        training.rows.append(
            [
                row["model"],
                *(fmt(row[key]) for key in METRIC_KEYS),
                fmt(row["fit_s"], 1),
                fmt_range(row["step_ms"], row["step_ms_min"], row["step_ms_max"]),
                fmt(row["train_peak_rss_mib"], 0),
            ]
        )
    largest = max(config.batch_sizes)
    inference = Table(
        header=[
            "model",
            "backend",
            "image AUROC",
            "pixel AUROC",
            *(f"batch {size} (img/s)" for size in config.batch_sizes),
            f"peak RSS b{largest} (MiB)",
            "size (MiB)",
        ],
        caption=f"Inference on {config.threads or os.cpu_count()} CPU threads: images/s, median over "
        f"{config.repeats} repetitions after {config.warmup} warm-up calls [slowest-fastest]; the full anomalib "
        "graph (pre-processing, model, post-processing). Accuracy of each back-end recomputed on its own outputs.",
    )
    for row in rows:
        for backend in config.backends:
            speeds = [
                fmt_range(
                    row[f"{backend}_b{size}_ips"],
                    row[f"{backend}_b{size}_ips_min"],
                    row[f"{backend}_b{size}_ips_max"],
                    1,
                )
                for size in config.batch_sizes
            ]
            inference.rows.append(
                [
                    row["model"],
                    backend,
                    fmt(row[f"{backend}_image_AUROC"]),
                    fmt(row[f"{backend}_pixel_AUROC"]),
                    *speeds,
                    fmt(row[f"{backend}_b{largest}_peak_rss_mib"], 0),
                    fmt(row[f"{backend}_size_mib"], 1),
                ]
            )
    return [training, inference]


__all__ = ["benchmark_model", "compare_tables", "run_compare"]
