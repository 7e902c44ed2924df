"""The ``compare`` study: EA2D next to anomalib's PatchCore, Reverse Distillation and UniNet.

Each model is trained with every seed and tested with anomalib's :class:`~anomalib.engine.Engine`
on the same synthetic brain-MRI data, input size and random-init ResNet backbones, with one shared
evaluator (image AUROC/F1/AP, sensitivity at 95 % specificity, pixel AUROC/AUPRO/AP, Dice, best
Dice). Each trained model is tested twice (:data:`VARIANTS`): as anomalib builds it, and with the
region of interest and the operating point at a chosen specificity. The first seed's models are
then timed at several batch sizes in torch eager, OpenVINO FP32 and OpenVINO INT8, with the
accuracy of each back-end recomputed on its own outputs, its peak RSS and its size on disk. Every
run is a fresh process (unless ``isolate=False``), so peak RSS is the model's own. Writes
``compare.csv`` (one row per model, seed and variant), ``compare_timings.csv``, ``compare.md``
(mean +- std over seeds) and ``compare.png``, and each test's run report
(``work/<model>_seed<seed>/report_<variant>.html``, :func:`report_file`).
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

from anomalib_ea2d.callbacks.roi import RegionOfInterest
from anomalib_ea2d.pipelines.benchmark.backends import build_predictors
from anomalib_ea2d.pipelines.benchmark.builders import (
    build_datamodule,
    build_engine,
    build_model,
    images_for,
    load_test_batches,
    quiet_lightning,
)
from anomalib_ea2d.pipelines.benchmark.config import CompareConfig
from anomalib_ea2d.pipelines.benchmark.measure import PeakRSS, StepTimer, set_threads, summarize, time_calls
from anomalib_ea2d.pipelines.benchmark.metrics import (
    MEDICAL_KEYS,
    METRIC_KEYS,
    METRIC_LABELS,
    compute_metrics,
    shared_evaluator,
)
from anomalib_ea2d.pipelines.benchmark.report import (
    Point,
    Table,
    fmt,
    fmt_mean_std,
    fmt_range,
    mean_std,
    write_scatter,
    write_study,
)
from anomalib_ea2d.post_processing.specificity_post_processor import SpecificityPostProcessor
from anomalib_ea2d.visualization.report import RunReport

logger = logging.getLogger(__name__)

_MARKERS = {"torch": "o", "openvino-fp32": "s", "openvino-int8": "^"}


VARIANTS: tuple[str, ...] = ("anomalib", "roi+op")
"""Evaluations of every trained model: as anomalib builds it (F1-adaptive threshold from the
validation images, whole image), and with the region of interest and the operating point at a
chosen specificity (:class:`~anomalib_ea2d.RegionOfInterest`, :class:`~anomalib_ea2d.SpecificityPostProcessor`)."""

_ACCURACY_KEYS = (*METRIC_KEYS, *MEDICAL_KEYS)


def report_file(variant: str) -> str:
    """File name of a variant's run report in its model's work folder, e.g. ``report_roi_op.html``."""
    return f"report_{variant.replace('+', '_')}.html"


def _test_metrics(engine: Any, model: Any, datamodule: Any, name: str) -> dict[str, float]:  # noqa: ANN401
    metrics = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    missing = [key for key in _ACCURACY_KEYS if key not in metrics]
    if missing:
        msg = f"{name}: engine.test reported no {missing}; the test set must hold normal and lesion slices with masks."
        raise RuntimeError(msg)
    return {key: float(metrics[key]) for key in _ACCURACY_KEYS}


def _fit_and_test(
    name: str, seed: int, config: CompareConfig, output: Path, work: Path
) -> tuple[Any, Any, dict[str, Any]]:
    """Train and test one model with anomalib's Engine; return the model, the datamodule and its row."""
    seed_everything(seed, workers=True)
    datamodule = build_datamodule(config.data, output, config.train_batch_size, config.eval_batch_size)
    backbone = config.uninet_backbone if name == "uninet" else config.backbone
    evaluator = shared_evaluator(medical=True)
    model = build_model(name, backbone, config.data.image_size, config.train_steps, evaluator=evaluator)
    timer = StepTimer()
    engine = build_engine(work, name, config.train_steps, [timer, RunReport(work, filename=report_file(VARIANTS[0]))])
    with PeakRSS() as train_rss:
        start = time.perf_counter()
        engine.fit(model=model, datamodule=datamodule)
        fit_seconds = time.perf_counter() - start
    step = summarize(timer.samples[1:] or timer.samples)  # the first step includes one-off set-up
    row: dict[str, Any] = {
        "model": name,
        "seed": seed,
        "variant": VARIANTS[0],
        "backbone": backbone,
        "image_size": config.data.image_size,
        "train_steps": len(timer.samples),
        "train_batch_size": config.train_batch_size,
        "fit_s": fit_seconds,
        "step_ms": step["median"] * 1e3,
        "step_ms_min": step["min"] * 1e3,
        "step_ms_max": step["max"] * 1e3,
        "train_peak_rss_mib": train_rss.mib,
        **_test_metrics(engine, model, datamodule, name),
    }
    return model, datamodule, row


def _test_with_roi_and_operating_point(
    name: str,
    model: Any,  # noqa: ANN401
    datamodule: Any,  # noqa: ANN401
    config: CompareConfig,
    work: Path,
) -> dict[str, float]:
    """The trained model tested again with the ROI and a post-processor calibrated on normal validation images.

    A fresh Engine validates (normalisation and thresholds of the new post-processor) and tests; the
    training Engine's callbacks are left behind, so nothing post-processes twice.
    """
    settings = config.medical
    model.post_processor = SpecificityPostProcessor(image_fpr=settings.image_fpr, pixel_fpr=settings.pixel_fpr)
    callbacks = [RegionOfInterest(**settings.roi), RunReport(work, filename=report_file(VARIANTS[1]))]
    engine = build_engine(work / "roi_op", name, config.train_steps, callbacks)
    engine.validate(model=model, datamodule=datamodule, verbose=False)
    return _test_metrics(engine, model, datamodule, name)


def _time_backends(
    model: Any,  # noqa: ANN401
    datamodule: Any,  # noqa: ANN401
    config: CompareConfig,
    work: Path,
    row: dict[str, Any],
) -> list[dict[str, Any]]:
    """Export, score and time the model in every back-end; adds the columns to ``row``, returns the raw samples."""
    model.eval()
    batches = load_test_batches(datamodule)
    timing_images = images_for(batches, max(config.batch_sizes))
    image_shape = tuple(batches[0].image.shape[1:])
    predictors, sizes = build_predictors(model, config.backends, work, image_shape, datamodule)
    row.update(sizes)
    samples: list[dict[str, Any]] = []
    for backend, predict in predictors.items():
        try:
            outputs = [predict(batch.image) for batch in batches]
        except RuntimeError as error:  # OpenVINO could not compile the export: reported, not timed
            reason = " ".join(str(error).split())[-200:]
            row[f"{backend}_error"] = f"compile failed: {reason}"
            logger.warning("%s of %s failed, not timed: %s", backend, row["model"], reason)
            continue
        accuracy = compute_metrics(outputs, batches)
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
                {"model": row["model"], "backend": backend, "batch_size": batch_size, "repeat": index, "seconds": value}
                for index, value in enumerate(seconds)
            ]
    return samples


@quiet_lightning()
def benchmark_model(
    name: str, seed: int, config: CompareConfig, output: Path, timed: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train one model with one seed, test it in both :data:`VARIANTS` and (``timed``) time its back-ends.

    Returns:
        One row per variant, and the raw timing samples (empty unless ``timed``).
    """
    set_threads(config.threads)
    work = output / "work" / f"{name}_seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    model, datamodule, row = _fit_and_test(name, seed, config, output, work)
    samples = _time_backends(model, datamodule, config, work, row) if timed else []
    medical = {**{key: row[key] for key in ("model", "seed", "backbone", "image_size")}, "variant": VARIANTS[1]}
    medical.update(_test_with_roi_and_operating_point(name, model, datamodule, config, work))
    return [row, medical], samples


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
    for seed in config.seeds:
        for name in config.models:
            logger.info("compare: %s, seed %d", name, seed)
            arguments = (name, seed, config, output, seed == config.seeds[0])
            model_rows, model_samples = (
                _run_isolated(benchmark_model, *arguments) if isolate else benchmark_model(*arguments)
            )
            rows += model_rows
            samples += model_samples
    write_study(
        output,
        "compare",
        compare_tables(rows, config),
        csv={"compare.csv": rows, "compare_timings.csv": samples},
    )
    batch = min(config.batch_sizes)
    timed = [row for row in rows if f"torch_b{batch}_latency_ms" in row]
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
            for index, row in enumerate(timed)
            for backend in config.backends
            if f"{backend}_b{batch}_latency_ms" in row
        ],
        xlabel=f"latency at batch {batch} (ms, log scale)",
        ylabel="image AUROC (synthetic brain set)",
        title=f"{config.backbone}, {config.data.image_size} px, {config.threads or os.cpu_count()} CPU threads",
        log_x=True,
    )
    return rows


ACCURACY_COLUMNS: tuple[str, ...] = (
    "image_AUROC",
    "image_AveragePrecision",
    "image_SensitivityAtSpecificity",
    "image_Sensitivity",
    "image_Specificity",
    "image_F1Score",
    "pixel_AUROC",
    "pixel_AveragePrecision",
    "pixel_AUPRO",
    "pixel_Dice",
    "pixel_BestDice",
)
"""Columns of the accuracy table (every metric is also in ``compare.csv``)."""


def compare_tables(rows: Sequence[dict[str, Any]], config: CompareConfig) -> list[Table]:
    """Accuracy (mean +- std over seeds) per model and variant; training cost; speed per model and back-end."""
    seeds = ", ".join(map(str, config.seeds))
    accuracy = Table(
        header=["model", "evaluation", *(METRIC_LABELS[key] for key in ACCURACY_COLUMNS)],
        caption=f"Accuracy from anomalib's `Engine.test` on the held-out test half, mean +- sample std over "
        f"seeds {seeds} (model initialisation and data order). Backbones start from random weights. "
        "`anomalib`: the model as anomalib builds it (whole image; threshold maximising F1 on the validation "
        f"half). `roi+op`: the same trained model with the region of interest {config.medical.roi} and the "
        f"thresholds flagging {config.medical.image_fpr:.0%} of the normal validation images / "
        f"{config.medical.pixel_fpr:.0%} of their pixels. sens/spec (op): at the model's threshold; "
        "sens@95%spec: threshold-free.",
    )
    for entry in mean_std(rows, ["model", "variant"], ACCURACY_COLUMNS):
        cells = [fmt_mean_std(entry, key) for key in ACCURACY_COLUMNS]
        accuracy.rows.append([entry["model"], entry["variant"], *cells])
    trained = [row for row in rows if row["variant"] == VARIANTS[0]]
    training = Table(
        header=["model", "backbone", "fit (s)", "step (ms, median [min-max], first seed)", "train peak RSS (MiB)"],
        caption=f"Input {config.data.image_size} px, {config.train_steps} training steps of batch "
        f"{config.train_batch_size} (PatchCore: one epoch to fill its memory bank); fit time mean +- std over seeds.",
    )
    first = {row["model"]: row for row in trained if row["seed"] == config.seeds[0]}
    for entry in mean_std(trained, ["model"], ["fit_s", "train_peak_rss_mib"]):
        row = first[entry["model"]]
        training.rows.append(
            [
                entry["model"],
                row["backbone"],
                fmt_mean_std(entry, "fit_s", 1),
                fmt_range(row["step_ms"], row["step_ms_min"], row["step_ms_max"]),
                fmt(entry["train_peak_rss_mib"], 0),
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
        caption=f"Inference of the first seed's models on {config.threads or os.cpu_count()} CPU threads: "
        f"images/s, median over {config.repeats} repetitions after {config.warmup} warm-up calls "
        "[slowest-fastest]; the full anomalib graph (pre-processing, model, post-processing) as anomalib "
        "builds it. Accuracy of each back-end recomputed on its own outputs.",
    )
    for row in first.values():
        for backend in config.backends:
            if f"{backend}_error" in row:
                failed = f"failed (...{row[f'{backend}_error'][-90:]})"
                inference.rows.append([row["model"], backend, failed, *["-"] * (len(inference.header) - 3)])
                continue
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
    return [accuracy, training, inference]


__all__ = ["ACCURACY_COLUMNS", "VARIANTS", "benchmark_model", "compare_tables", "report_file", "run_compare"]
