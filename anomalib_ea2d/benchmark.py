"""Benchmarks of EA2D against anomalib's PatchCore and Reverse Distillation on the synthetic brain set.

Four studies share this module, each a sub-command of ``python -m anomalib_ea2d.benchmark``:

``compare``
    Each model trained with anomalib's :class:`~anomalib.engine.Engine` on the same
    :class:`~anomalib_ea2d.data.SyntheticBrainMRI` data, input size and ResNet backbone; image
    AUROC/F1 and pixel AUROC/PRO with one shared evaluator; training wall time and time per step;
    throughput at several batch sizes in torch eager, OpenVINO FP32 and OpenVINO INT8 (anomalib
    export, INT8 by post-training quantisation with the datamodule); the accuracy of each exported
    model; peak RSS; model size on disk. Every model runs in a fresh process (``--no-isolate`` to
    run in this one), so peak RSS is the model's own.
``scaling``
    EA2D inference time, peak RSS and the share of the self-attention modules versus input size
    and batch (the attention is quadratic in the number of positions).
``goals``
    The speed ratios EA2D is held to: torch eval latency versus anomalib's Reverse Distillation
    model, OpenVINO FP32/INT8 versus torch eager, and the per-step overhead of Lightning/anomalib
    training versus a plain torch loop over the same model.
``ablation``
    EA2D without attention skips, with one view, without the contrastive term, and with a frozen
    encoder, next to the full model; several seeds, mean and standard deviation.

``all`` runs the four and writes ``report.md`` (machine description, tables, plot). Each study
writes CSV files and a markdown table into ``--output``. Timings are medians over repetitions
with their spread; nothing is hidden on failure: an error stops the run with its traceback.
No pretrained weights are downloaded (every backbone starts from random weights), so accuracies
measure the pipeline on the synthetic set, not the methods at their best.

Example:
    A seconds-long smoke run (the test suite runs one)::

        python -m anomalib_ea2d.benchmark compare --preset smoke --output /tmp/bench
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import platform
import re
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from anomalib.data import InferenceBatch
from anomalib.deploy import CompressionType, ExportType
from anomalib.engine import Engine
from anomalib.metrics import AUPRO, AUROC, PRO, Evaluator, F1Score
from anomalib.models import AnomalibModule, Patchcore, ReverseDistillation
from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerationMode
from anomalib.models.image.reverse_distillation.torch_model import ReverseDistillationModel
from lightning.pytorch import Callback, seed_everything
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.flop_counter import FlopCounterMode

from anomalib_ea2d.anomaly_map import view_anomaly_map
from anomalib_ea2d.components import SelfAttention2d
from anomalib_ea2d.lightning_model import EA2D
from anomalib_ea2d.torch_model import INPUT_MULTIPLE, EA2DFeatures, EA2DModel

logger = logging.getLogger(__name__)

MODEL_NAMES: tuple[str, ...] = ("ea2d", "patchcore", "reverse_distillation")
"""Models of the ``compare`` study, by their anomalib name."""

BACKENDS: tuple[str, ...] = ("torch", "openvino-fp32", "openvino-int8")
"""Inference back-ends: torch eager, OpenVINO with FP32 inference precision, OpenVINO INT8 (PTQ)."""

ABLATIONS: tuple[str, ...] = ("full", "no_attention", "one_view", "no_contrastive", "frozen_encoder")
"""EA2D variants of the ``ablation`` study."""

METRIC_KEYS: tuple[str, ...] = ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_AUPRO", "pixel_PRO")
"""Metrics every model of the comparison reports (one shared evaluator).

``pixel_AUPRO`` integrates the per-region overlap up to a false-positive rate of 0.3 (the usual
PRO figure of papers); ``pixel_PRO`` is anomalib's PRO at one threshold (0.5 of the normalised
map), which a map that is high everywhere also scores well on.
"""

PRO_THRESHOLD = 0.5
"""Binarisation threshold of PRO on the post-processed (normalised) anomaly maps, anomalib's default."""


# --------------------------------------------------------------------------------------------------
# Measurement helpers
# --------------------------------------------------------------------------------------------------


def _read_status_kib(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+)\s+kB", text, flags=re.MULTILINE)
    return int(match.group(1)) if match else None


class PeakRSS:
    """Peak resident set size of this process while the ``with`` block runs, in MiB.

    On Linux the kernel's high-water mark is reset on entry (``/proc/self/clear_refs``), so the
    value is the block's own peak. Elsewhere the process-lifetime peak (``ru_maxrss``) is reported
    and :attr:`block_only` is ``False``.

    Example:
        >>> with PeakRSS() as rss:
        ...     buffer = bytearray(64 * 2**20)
        >>> rss.mib > 0
        True
    """

    def __init__(self) -> None:
        self.mib = float("nan")
        self.block_only = False

    def __enter__(self) -> PeakRSS:
        try:
            Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
            self.block_only = _read_status_kib("VmHWM") is not None
        except OSError:
            self.block_only = False
        return self

    def __exit__(self, *exc: object) -> None:
        peak_kib = _read_status_kib("VmHWM") if self.block_only else None
        if peak_kib is None:
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        self.mib = peak_kib / 1024


def time_calls(function: Callable[[], object], repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``function`` after ``warmup`` untimed calls.

    Example:
        >>> samples = time_calls(lambda: sum(range(1000)), repeats=3)
        >>> len(samples), all(s >= 0 for s in samples)
        (3, True)
    """
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, minimum, maximum and relative spread (``(max - min) / median``) of timing samples.

    Example:
        >>> summarize([1.0, 2.0, 4.0])["median"]
        2.0
    """
    if not samples:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "spread": math.nan}
    median = statistics.median(samples)
    low, high = min(samples), max(samples)
    return {"median": median, "min": low, "max": high, "spread": (high - low) / median if median else math.nan}


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """Machine and software description for the reports."""
    import anomalib  # noqa: PLC0415
    import lightning  # noqa: PLC0415
    import timm  # noqa: PLC0415

    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "threads": threads or torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        if hasattr(os, "sysconf")
        else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "anomalib": anomalib.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import openvino  # noqa: PLC0415

        info["openvino"] = openvino.__version__
    except ImportError:
        info["openvino"] = None
    return info


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op threads in torch (default: all CPUs) and return the number."""
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


class StepTimer(Callback):
    """Lightning callback recording the wall time of each training step (batch start to batch end).

    The interval covers the pre-processing transform, forward, loss, backward, gradient clipping
    and optimizer step; data loading is outside it.

    Example:
        >>> timer = StepTimer()
        >>> timer.samples
        []
    """

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, *args: object) -> None:
        """Start the step clock."""
        del args
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: object) -> None:
        """Stop the step clock."""
        del args
        self.samples.append(time.perf_counter() - self._start)


# --------------------------------------------------------------------------------------------------
# Data and models
# --------------------------------------------------------------------------------------------------


@dataclass
class DataSpec:
    """The synthetic brain-MRI set used by every study (generated once, cached under ``root``).

    Attributes:
        root: Folder of the generated set (``None``: ``<output>/data``).
        image_size: Side of the slices; also the models' input size.
        num_train: Normal training slices.
        num_test_normal: Normal test slices.
        num_test_abnormal: Test slices with lesions.
        generation_seed: Seed of the generator.
    """

    root: Path | None = None
    image_size: int = 128
    num_train: int = 200
    num_test_normal: int = 100
    num_test_abnormal: int = 100
    generation_seed: int = 0

    def folder_name(self) -> str:
        """Folder name of the default root, unique per set parameters."""
        return (
            f"synthetic_brain_{self.image_size}px_{self.num_train}_{self.num_test_normal}_"
            f"{self.num_test_abnormal}_seed{self.generation_seed}"
        )

    def datamodule(self, output: Path, train_batch_size: int, eval_batch_size: int) -> Any:  # noqa: ANN401
        """A :class:`~anomalib_ea2d.data.SyntheticBrainMRI` datamodule over this set.

        Its validation split (normalisation and thresholds) is a fixed half of the generated test
        slices; the other half is tested. The split is the same for every model and seed.
        """
        from anomalib_ea2d.data import SyntheticBrainMRI  # noqa: PLC0415

        root = self.root or output / "data" / self.folder_name()
        return SyntheticBrainMRI(
            root=root,
            image_size=self.image_size,
            num_train=self.num_train,
            num_test_normal=self.num_test_normal,
            num_test_abnormal=self.num_test_abnormal,
            generation_seed=self.generation_seed,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=0,
        )


def shared_evaluator() -> Any:  # noqa: ANN401
    """Image AUROC/F1 and pixel AUROC/AUPRO/PRO (:data:`METRIC_KEYS`), the same for every model of a comparison."""
    return Evaluator(test_metrics=list(_metrics(prefixed=True).values()))


def _metrics(prefixed: bool) -> dict[str, Any]:
    """The metrics of :data:`METRIC_KEYS`, named ``image_*``/``pixel_*`` when ``prefixed``."""
    image, pixel = ("image_", "pixel_") if prefixed else ("", "")
    mask_fields = ["anomaly_map", "gt_mask"]
    return {
        "image_AUROC": AUROC(fields=["pred_score", "gt_label"], prefix=image),
        "image_F1Score": F1Score(fields=["pred_label", "gt_label"], prefix=image),
        "pixel_AUROC": AUROC(fields=mask_fields, prefix=pixel, strict=False),
        "pixel_AUPRO": AUPRO(fields=mask_fields, prefix=pixel, strict=False, fpr_limit=0.3),
        "pixel_PRO": PRO(fields=mask_fields, prefix=pixel, strict=False, threshold=PRO_THRESHOLD),
    }


def build_model(
    name: str,
    backbone: str,
    image_size: int,
    max_steps: int,
    ea2d_args: dict[str, Any] | None = None,
) -> Any:  # noqa: ANN401
    """An anomalib model with the shared input size, backbone family and evaluator.

    Args:
        name: ``"ea2d"``, ``"patchcore"`` or ``"reverse_distillation"``.
        backbone: ResNet name (random weights: nothing is downloaded).
        image_size: Input size of the pre-processor (Resize + ImageNet normalisation).
        max_steps: EA2D's training length (the other models get theirs from the trainer).
        ea2d_args: Extra EA2D init args (the ablation switches).
    """
    size = (image_size, image_size)
    common = {"evaluator": shared_evaluator(), "visualizer": False}
    if name == "ea2d":
        return EA2D(
            backbone=backbone,
            pre_trained=False,
            image_size=image_size,
            max_steps=max_steps,
            **common,
            **(ea2d_args or {}),
        )
    pre_processor = AnomalibModule.configure_pre_processor(size)
    if name == "patchcore":
        return Patchcore(backbone=backbone, pre_trained=False, pre_processor=pre_processor, **common)
    if name == "reverse_distillation":
        return ReverseDistillation(backbone=backbone, pre_trained=False, pre_processor=pre_processor, **common)
    msg = f"Unknown benchmark model {name!r}; choose from {', '.join(MODEL_NAMES)}."
    raise ValueError(msg)


_NOISY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "anomalib", "nncf", "anomalib_ea2d")


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence training chatter while a study runs; logger levels and warning filters are restored after."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [item.level for item in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for item in loggers:
            item.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for item, level in zip(loggers, levels, strict=True):
                item.setLevel(level)


def _engine(output: Path, name: str, max_steps: int, callbacks: list) -> Any:  # noqa: ANN401

    kwargs: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "default_root_dir": str(output),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": callbacks,
    }
    if name != "patchcore":  # PatchCore fits its memory bank in one epoch, validated at its end
        kwargs.update(max_steps=max_steps, check_val_every_n_epoch=None, val_check_interval=max_steps)
    return Engine(**kwargs)


# --------------------------------------------------------------------------------------------------
# Predictions and metrics of torch and OpenVINO models on the test set
# --------------------------------------------------------------------------------------------------


def _test_batches(datamodule: Any) -> list[Any]:  # noqa: ANN401
    datamodule.setup("test")
    return list(datamodule.test_dataloader())


def compute_metrics(outputs: Sequence[dict[str, torch.Tensor]], batches: Sequence[Any]) -> dict[str, float]:
    """Image AUROC/F1 and pixel AUROC/PRO of predictions (``pred_score``, ``pred_label``, ``anomaly_map``).

    The anomalib metric classes are fed exactly as anomalib's evaluator feeds them, so torch and
    exported models are scored the same way.
    """
    metrics = _metrics(prefixed=False)
    for output, batch in zip(outputs, batches, strict=True):
        anomaly_map = output["anomaly_map"].float()
        if anomaly_map.ndim == 3:
            anomaly_map = anomaly_map.unsqueeze(1)
        mask = batch.gt_mask
        if mask is not None and anomaly_map.shape[-2:] != mask.shape[-2:]:
            anomaly_map = F.interpolate(anomaly_map, size=mask.shape[-2:], mode="bilinear", align_corners=False)
        view = SimpleNamespace(
            pred_score=output["pred_score"].float().reshape(-1),
            pred_label=output["pred_label"].reshape(-1).bool(),
            anomaly_map=anomaly_map.squeeze(1),
            gt_label=batch.gt_label,
            gt_mask=mask,
        )
        for metric in metrics.values():
            metric.update(view)
    return {key: float(metric.compute()) for key, metric in metrics.items()}


def torch_predict(module: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of an anomalib module's full forward (pre-processing, model, post-processing)."""
    with torch.inference_mode():
        output = module(images)
    return {key: value for key, value in output._asdict().items() if value is not None}


PREDICTION_FIELDS = ("pred_score", "pred_label", "anomaly_map", "pred_mask")


def _output_name(output: Any) -> str:  # noqa: ANN401
    """The anomalib field name of an OpenVINO output (a tensor may carry several names after compilation)."""
    names = output.get_names()
    return next((field for field in PREDICTION_FIELDS if field in names), output.get_any_name())


class OpenVINOModel:
    """A compiled OpenVINO model of an anomalib export, reshaped to a static input shape.

    Args:
        xml: Path of the exported ``model.xml``.
        shape: ``(batch, channels, height, width)`` the model is reshaped and compiled for.
        threads: ``INFERENCE_NUM_THREADS``.
        precision: ``INFERENCE_PRECISION_HINT`` (``"f32"``: no bf16 even where the CPU has it).
    """

    def __init__(self, xml: Path, shape: Sequence[int], threads: int, precision: str = "f32") -> None:
        import openvino as ov  # noqa: PLC0415

        core = ov.Core()
        model = core.read_model(str(xml))
        model.reshape({model.input(0).get_any_name(): list(shape)})
        self.compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": precision,
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
            },
        )
        self.request = self.compiled.create_infer_request()
        self.names = [_output_name(output) for output in self.compiled.outputs]
        self.shape = tuple(shape)

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the model on a batch of the compiled shape."""
        result = self.request.infer({0: images.numpy()})
        return {name: torch.from_numpy(np.asarray(result[index])) for index, name in enumerate(self.names)}


def _predict_test_set(predict: Callable[[torch.Tensor], dict], batches: Sequence[Any]) -> list[dict]:
    return [predict(batch.image) for batch in batches]


def _openvino_predict_fn(xml: Path, image_shape: Sequence[int], threads: int) -> Callable[[torch.Tensor], dict]:
    compiled: dict[int, OpenVINOModel] = {}

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = images.shape[0]
        if batch not in compiled:
            compiled[batch] = OpenVINOModel(xml, (batch, *image_shape), threads)
        return compiled[batch](images)

    return predict


def _images_for(batches: Sequence[Any], count: int) -> torch.Tensor:
    images = torch.cat([batch.image for batch in batches])
    repeats = math.ceil(count / images.shape[0])
    return images.repeat(repeats, 1, 1, 1)[:count].contiguous()


def _size_mib(*paths: Path) -> float:
    return sum(path.stat().st_size for path in paths) / 2**20


# --------------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------------


@dataclass
class CompareConfig:
    """Settings of the ``compare`` study.

    Attributes:
        models: Models to compare (:data:`MODEL_NAMES`).
        backbone: ResNet backbone of every model.
        train_steps: Optimizer steps of EA2D and Reverse Distillation (PatchCore: one epoch).
        train_batch_size: Training batch size.
        eval_batch_size: Test batch size.
        seed: Seed of model initialisation and data order.
        batch_sizes: Batch sizes of the throughput measurements.
        backends: Inference back-ends (:data:`BACKENDS`).
        repeats: Timed repetitions per throughput measurement.
        warmup: Untimed calls before them.
        threads: CPU threads for torch and OpenVINO (``None``: all CPUs).
        data: The synthetic set.
    """

    models: tuple[str, ...] = MODEL_NAMES
    backbone: str = "resnet18"
    train_steps: int = 100
    train_batch_size: int = 16
    eval_batch_size: int = 32
    seed: int = 0
    batch_sizes: tuple[int, ...] = (1, 32)
    backends: tuple[str, ...] = BACKENDS
    repeats: int = 5
    warmup: int = 2
    threads: int | None = None
    data: DataSpec = field(default_factory=DataSpec)


def _fit_and_test(name: str, config: CompareConfig, work: Path) -> tuple[Any, Any, Any, dict[str, Any]]:
    """Train and test one model with anomalib's Engine; return model, engine, datamodule and the summary row."""
    seed_everything(config.seed, workers=True)
    datamodule = config.data.datamodule(work.parent.parent, config.train_batch_size, config.eval_batch_size)
    model = build_model(name, config.backbone, config.data.image_size, config.train_steps)
    timer = StepTimer()
    engine = _engine(work, name, config.train_steps, [timer])
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
    return model, engine, datamodule, row


def _predictors(
    model: Any,  # noqa: ANN401
    engine: Any,  # noqa: ANN401
    datamodule: Any,  # noqa: ANN401
    config: CompareConfig,
    work: Path,
    image_shape: Sequence[int],
    row: dict[str, Any],
) -> dict[str, Callable[[torch.Tensor], dict]]:
    """One prediction function per back-end (exporting the OpenVINO models); sizes on disk go into ``row``."""
    threads = torch.get_num_threads()
    torch_file = work / "model_state_dict.pt"
    torch.save(model.model.state_dict(), torch_file)
    row["torch_size_mib"] = _size_mib(torch_file)
    predictors: dict[str, Callable[[torch.Tensor], dict]] = {}
    for backend in config.backends:
        if backend not in BACKENDS:
            msg = f"Unknown backend {backend!r}; choose from {', '.join(BACKENDS)}."
            raise ValueError(msg)
        if backend == "torch":
            predictors[backend] = lambda images: torch_predict(model, images)
            continue
        int8 = backend == "openvino-int8"
        xml = Path(
            engine.export(
                model=model,
                export_type=ExportType.OPENVINO,
                export_root=work / backend,
                compression_type=CompressionType.INT8_PTQ if int8 else None,
                datamodule=datamodule if int8 else None,
            )
        )
        row[f"{backend}_size_mib"] = _size_mib(xml, xml.with_suffix(".bin"))
        predictors[backend] = _openvino_predict_fn(xml, image_shape, threads)
    return predictors


@_quiet_lightning()
def benchmark_model(name: str, config: CompareConfig, output: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train, test, export and time one model; return its summary row and its raw timing samples."""
    set_threads(config.threads)
    work = output / "work" / name
    work.mkdir(parents=True, exist_ok=True)
    model, engine, datamodule, row = _fit_and_test(name, config, work)
    model.eval()
    batches = _test_batches(datamodule)
    timing_images = _images_for(batches, max(config.batch_sizes))
    predictors = _predictors(model, engine, datamodule, config, work, tuple(batches[0].image.shape[1:]), row)
    samples: list[dict[str, Any]] = []
    for backend, predict in predictors.items():
        accuracy = compute_metrics(_predict_test_set(predict, batches), batches)
        row.update({f"{backend}_{key}": value for key, value in accuracy.items()})
        for batch_size in config.batch_sizes:
            images = timing_images[:batch_size]
            predict(images)  # compiles OpenVINO for this shape outside the memory and time measurements
            with PeakRSS() as rss:
                seconds = time_calls(lambda: predict(images), repeats=config.repeats, warmup=config.warmup)  # noqa: B023
            summary = summarize(seconds)
            row[f"{backend}_b{batch_size}_ips"] = batch_size / summary["median"]
            row[f"{backend}_b{batch_size}_ips_min"] = batch_size / summary["max"]
            row[f"{backend}_b{batch_size}_ips_max"] = batch_size / summary["min"]
            row[f"{backend}_b{batch_size}_latency_ms"] = summary["median"] * 1e3
            row[f"{backend}_b{batch_size}_peak_rss_mib"] = rss.mib
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
    """Run the ``compare`` study and write ``compare.csv``, ``compare_timings.csv``, ``compare.md``, ``compare.png``."""
    output.mkdir(parents=True, exist_ok=True)
    # Generate the data once, before any model is timed.
    config.data.datamodule(output, config.train_batch_size, config.eval_batch_size).prepare_data()
    rows, samples = [], []
    for name in config.models:
        logger.info("compare: %s", name)
        row, model_samples = (
            _run_isolated(benchmark_model, name, config, output) if isolate else benchmark_model(name, config, output)
        )
        rows.append(row)
        samples += model_samples
    _write_csv(output / "compare.csv", rows)
    _write_csv(output / "compare_timings.csv", samples)
    (output / "compare.md").write_text(compare_markdown(rows, config), encoding="utf-8")
    plot_compare(rows, config, output / "compare.png")
    return rows


def _fmt(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.{digits}f}"
    return str(value)


def compare_markdown(rows: Sequence[dict[str, Any]], config: CompareConfig) -> str:
    """Markdown tables of the ``compare`` study."""
    lines = [
        f"Backbone {config.backbone} (random init), input {config.data.image_size} px, "
        f"{config.train_steps} training steps of batch {config.train_batch_size} "
        "(PatchCore: one epoch to fill its memory bank). Accuracy from anomalib's `Engine.test`.",
        "",
        "| model | image AUROC | image F1 | pixel AUROC | pixel AUPRO | PRO@0.5 | fit (s) "
        "| step (ms, median [min-max]) | train peak RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {_fmt(row['image_AUROC'])} | {_fmt(row['image_F1Score'])} "
            f"| {_fmt(row['pixel_AUROC'])} | {_fmt(row['pixel_AUPRO'])} | {_fmt(row['pixel_PRO'])} "
            f"| {_fmt(row['fit_s'], 1)} "
            f"| {_fmt(row['step_ms'], 0)} [{_fmt(row['step_ms_min'], 0)}-{_fmt(row['step_ms_max'], 0)}] "
            f"| {_fmt(row['train_peak_rss_mib'], 0)} |"
        )
    lines += [
        "",
        f"Inference on {config.threads or os.cpu_count()} CPU threads: images/s, median over {config.repeats} "
        f"repetitions after {config.warmup} warm-up calls [slowest-fastest]; the full anomalib graph "
        "(pre-processing, model, post-processing). Accuracy of each back-end recomputed on its own outputs.",
        "",
    ]
    header = "| model | backend | image AUROC | pixel AUROC | " + " | ".join(
        f"batch {size} (img/s)" for size in config.batch_sizes
    )
    header += f" | peak RSS b{max(config.batch_sizes)} (MiB) | size (MiB) |"
    lines += [header, "| --- | --- | --- | --- | " + " | ".join("---" for _ in config.batch_sizes) + " | --- | --- |"]
    for row in rows:
        for backend in config.backends:
            size_key = "torch_size_mib" if backend == "torch" else f"{backend}_size_mib"
            cells = [
                f"{_fmt(row[f'{backend}_b{size}_ips'], 1)} "
                f"[{_fmt(row[f'{backend}_b{size}_ips_min'], 1)}-{_fmt(row[f'{backend}_b{size}_ips_max'], 1)}]"
                for size in config.batch_sizes
            ]
            lines.append(
                f"| {row['model']} | {backend} | {_fmt(row[f'{backend}_image_AUROC'])} "
                f"| {_fmt(row[f'{backend}_pixel_AUROC'])} | "
                + " | ".join(cells)
                + f" | {_fmt(row[f'{backend}_b{max(config.batch_sizes)}_peak_rss_mib'], 0)} "
                f"| {_fmt(row[size_key], 1)} |"
            )
    return "\n".join(lines) + "\n"


def plot_compare(rows: Sequence[dict[str, Any]], config: CompareConfig, path: Path) -> None:
    """Batch-1 latency versus image AUROC, one marker per model and back-end."""
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    markers = {"torch": "o", "openvino-fp32": "s", "openvino-int8": "^"}
    batch = min(config.batch_sizes)
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for index, row in enumerate(rows):
        colour = f"C{index}"
        for backend in config.backends:
            axes.scatter(
                row[f"{backend}_b{batch}_latency_ms"],
                row[f"{backend}_image_AUROC"],
                marker=markers.get(backend, "x"),
                color=colour,
                label=f"{row['model']} / {backend}",
            )
    axes.set_xscale("log")
    axes.set_xlabel(f"latency at batch {batch} (ms, log scale)")
    axes.set_ylabel("image AUROC (synthetic brain set)")
    axes.set_title(f"{config.backbone}, {config.data.image_size} px, {config.threads or os.cpu_count()} CPU threads")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    import pandas as pd  # noqa: PLC0415

    pd.DataFrame(list(rows)).to_csv(path, index=False)


# --------------------------------------------------------------------------------------------------
# scaling
# --------------------------------------------------------------------------------------------------


@dataclass
class ScalingConfig:
    """Settings of the ``scaling`` study (EA2D inference, eval mode, random weights).

    Attributes:
        backbone: ResNet backbone.
        sizes: Square input sizes at batch 1.
        batches: Batch sizes at ``batch_size_image`` px.
        batch_size_image: Input size of the batch sweep.
        repeats: Timed repetitions per point.
        threads: CPU threads (``None``: all CPUs).
    """

    backbone: str = "resnet50"
    sizes: tuple[int, ...] = (128, 192, 256, 384, 512)
    batches: tuple[int, ...] = (1, 4, 8)
    batch_size_image: int = 256
    repeats: int = 3
    threads: int | None = None


def _attention_flops(model: nn.Module, batch: int, size: int) -> float:
    """Multiply-add FLOPs (x2) of the attention products ``Q K^T`` and ``A V`` of every attention module."""
    total = 0.0
    for name, module in model.named_modules():
        if isinstance(module, SelfAttention2d):
            stride = 8 if name.endswith("attention_e2") else 16
            positions = (size // stride) ** 2
            reduced = module.query_conv.out_channels
            channels = module.value_conv.out_channels
            total += 2.0 * batch * positions * positions * (reduced + channels)
    return total


def _model_flops(model: nn.Module, images: torch.Tensor) -> float:

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(images)
    return float(counter.get_total_flops())


class AttentionClock:
    """Forward hooks summing the wall time spent inside every ``SelfAttention2d`` of a model."""

    def __init__(self, model: nn.Module) -> None:

        self.seconds = 0.0
        self._start = 0.0
        self._handles = []
        for module in model.modules():
            if isinstance(module, SelfAttention2d):
                self._handles.append(module.register_forward_pre_hook(self._pre))
                self._handles.append(module.register_forward_hook(self._post))

    def _pre(self, *args: object) -> None:
        del args
        self._start = time.perf_counter()

    def _post(self, *args: object) -> None:
        del args
        self.seconds += time.perf_counter() - self._start

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()


def run_scaling(config: ScalingConfig, output: Path) -> list[dict[str, Any]]:
    """EA2D latency, attention share and peak RSS versus input size and batch; writes ``scaling.*``."""
    output.mkdir(parents=True, exist_ok=True)
    threads = set_threads(config.threads)
    torch.manual_seed(0)
    model = EA2DModel(backbone=config.backbone, pre_trained=False).eval()
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.1)  # a trained-looking model: attention contributes
    clock = AttentionClock(model)
    points = [(1, size) for size in config.sizes]
    points += [
        (batch, config.batch_size_image) for batch in config.batches if (batch, config.batch_size_image) not in points
    ]
    rows = []
    try:
        for batch, size in points:
            images = torch.randn(batch, 3, size, size)
            flops = _model_flops(model, images)  # also the warm-up call
            with PeakRSS() as rss:
                latencies, attention = [], []
                for _ in range(config.repeats):
                    clock.seconds = 0.0
                    start = time.perf_counter()
                    with torch.inference_mode():
                        model(images)
                    latencies.append(time.perf_counter() - start)
                    attention.append(clock.seconds)
            summary = summarize(latencies)
            attention_flops = _attention_flops(model, batch, size)
            rows.append(
                {
                    "backbone": config.backbone,
                    "threads": threads,
                    "batch": batch,
                    "size": size,
                    "latency_ms": summary["median"] * 1e3,
                    "latency_ms_min": summary["min"] * 1e3,
                    "latency_ms_max": summary["max"] * 1e3,
                    "ms_per_image": summary["median"] * 1e3 / batch,
                    "attention_ms": statistics.median(attention) * 1e3,
                    "attention_share": statistics.median(a / t for a, t in zip(attention, latencies, strict=True)),
                    "gflops": flops / 1e9,
                    "attention_flop_share": attention_flops / flops if flops else math.nan,
                    "attention_matrix_mib": batch * (size // 8) ** 4 * 4 / 2**20,
                    "peak_rss_mib": rss.mib,
                }
            )
            logger.info("scaling: %s", rows[-1])
    finally:
        clock.remove()
    _write_csv(output / "scaling.csv", rows)
    (output / "scaling.md").write_text(scaling_markdown(rows, config), encoding="utf-8")
    return rows


def scaling_markdown(rows: Sequence[dict[str, Any]], config: ScalingConfig) -> str:
    """Markdown table of the ``scaling`` study."""
    lines = [
        f"EA2D {config.backbone}, eval mode, {rows[0]['threads'] if rows else '?'} CPU threads, median of "
        f"{config.repeats} calls [min-max]. Attention = the four `SelfAttention2d` modules (two per view), "
        "timed with forward hooks; its FLOP share counts only the two attention products.",
        "",
        "| batch | size | latency (ms) | ms / image | attention (ms) | attention time share "
        "| attention FLOP share | GFLOPs | largest attention matrix (MiB) | peak RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['batch']} | {row['size']} | {_fmt(row['latency_ms'], 0)} "
            f"[{_fmt(row['latency_ms_min'], 0)}-{_fmt(row['latency_ms_max'], 0)}] | {_fmt(row['ms_per_image'], 0)} "
            f"| {_fmt(row['attention_ms'], 0)} | {row['attention_share']:.0%} | {row['attention_flop_share']:.0%} "
            f"| {_fmt(row['gflops'], 1)} | {_fmt(row['attention_matrix_mib'], 0)} | {_fmt(row['peak_rss_mib'], 0)} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# goals
# --------------------------------------------------------------------------------------------------


@dataclass
class GoalsConfig:
    """Settings of the ``goals`` study.

    Attributes:
        backbone: Backbone of the inference ratios.
        image_size: Input size of the inference ratios.
        batch_size: Batch of the inference ratios.
        repeats: Interleaved timed repetitions of each inference variant.
        threads: CPU threads (the goals are stated for 2).
        train_backbone: Backbone of the training-overhead measurement.
        train_image_size: Input size of the training-overhead measurement.
        train_batch_size: Batch of the training-overhead measurement.
        train_steps: Timed steps of each training loop (after two untimed ones).
        data: The synthetic set (training batches).
        calibration: A small synthetic set whose validation (= test) split calibrates INT8.
    """

    backbone: str = "resnet50"
    image_size: int = 256
    batch_size: int = 4
    repeats: int = 5
    threads: int | None = 2
    train_backbone: str = "resnet18"
    train_image_size: int = 128
    train_batch_size: int = 16
    train_steps: int = 8
    data: DataSpec = field(default_factory=DataSpec)
    calibration: DataSpec = field(
        default_factory=lambda: DataSpec(num_train=16, num_test_normal=32, num_test_abnormal=32)
    )


def _interleaved(functions: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time several functions in alternation, so load changes hit them alike."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            samples[name].append(time.perf_counter() - start)
    return samples


def _randomise_eval_state(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and attention gammas, as a trained model has."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.empty(module.num_features).uniform_(-0.1, 0.1, generator=generator))
                module.running_var.copy_(torch.empty(module.num_features).uniform_(0.5, 2.0, generator=generator))
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.1)


def _plain_training_step_seconds(
    model: Any,  # noqa: ANN401
    batches: Sequence[torch.Tensor],
    steps: int,
) -> list[float]:
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


def _goal_torch_latency(config: GoalsConfig, module: Any, images: torch.Tensor) -> dict[str, list[float]]:  # noqa: ANN401
    """EA2DModel eval (fast path and plain modules) versus anomalib's ReverseDistillationModel, interleaved."""
    size = (config.image_size, config.image_size)
    ea2d = module.model
    plain = copy.deepcopy(ea2d)
    plain.fast_inference = False
    rd = ReverseDistillationModel(
        backbone=config.backbone,
        input_size=size,
        layers=["layer1", "layer2", "layer3"],
        anomaly_map_mode=AnomalyMapGenerationMode.ADD,
        pre_trained=False,
    ).eval()
    _randomise_eval_state(rd)
    normalized = module.pre_processor(images)

    def run(network: nn.Module) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                return network(normalized)

        return call

    return _interleaved({"ea2d": run(ea2d), "reverse_distillation": run(rd), "ea2d_plain": run(plain)}, config.repeats)


def _goal_openvino_latency(
    config: GoalsConfig,
    module: Any,  # noqa: ANN401
    images: torch.Tensor,
    output: Path,
) -> dict[str, list[float]]:
    """The EA2D Lightning forward in torch eager versus its OpenVINO FP32 and INT8 exports, interleaved."""
    threads = torch.get_num_threads()
    calibration = config.calibration.datamodule(output, config.batch_size, config.batch_size)
    fp32_xml = Path(module.to_openvino(output / "goals_openvino_fp32"))
    int8_xml = Path(
        module.to_openvino(
            output / "goals_openvino_int8", compression_type=CompressionType.INT8_PTQ, datamodule=calibration
        )
    )
    shape = tuple(images.shape)
    compiled = {"fp32": OpenVINOModel(fp32_xml, shape, threads), "int8": OpenVINOModel(int8_xml, shape, threads)}

    def full_torch() -> object:
        with torch.inference_mode():
            return module(images)

    return _interleaved(
        {
            "torch_full": full_torch,
            "openvino_fp32": lambda: compiled["fp32"](images),
            "openvino_int8": lambda: compiled["int8"](images),
        },
        config.repeats,
    )


def _goal_training_steps(config: GoalsConfig, output: Path) -> tuple[list[float], list[float]]:
    """Seconds per step of EA2D trained by anomalib's Engine and by a plain torch loop, twice each, alternating."""
    seed_everything(0)
    train_data = config.data.datamodule(output, config.train_batch_size, config.train_batch_size)
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
        engine = _engine(output / "goals_train", "ea2d", config.train_steps + 2, [timer])
        engine.fit(model=model, train_dataloaders=train_data.train_dataloader())
        lightning_steps += timer.samples[2:]
        model.load_state_dict(start_state)
        plain_steps += _plain_training_step_seconds(model, batches, config.train_steps)
    return lightning_steps, plain_steps


@_quiet_lightning()
def run_goals(config: GoalsConfig, output: Path) -> dict[str, Any]:
    """Measure the speed goals in one process; writes ``goals.json`` and ``goals.md``."""
    output.mkdir(parents=True, exist_ok=True)
    threads = set_threads(config.threads)
    torch.manual_seed(0)
    images = torch.rand(config.batch_size, 3, config.image_size, config.image_size)
    module = EA2D(backbone=config.backbone, pre_trained=False, image_size=config.image_size, visualizer=False).eval()
    _randomise_eval_state(module.model)
    samples = _goal_torch_latency(config, module, images)
    samples |= _goal_openvino_latency(config, module, images, output)
    lightning_steps, plain_steps = _goal_training_steps(config, output)

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
    result["goals"] = {
        "ea2d_over_rd <= 1.25": result["ea2d_over_rd"] <= 1.25,
        "openvino_fp32_speedup >= 1.5": result["openvino_fp32_speedup"] >= 1.5,
        "openvino_int8_speedup >= 2.5": result["openvino_int8_speedup"] >= 2.5,
        "lightning_over_plain <= 1.1": result["lightning_over_plain"] <= 1.1,
    }
    (output / "goals.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (output / "goals.md").write_text(goals_markdown(result), encoding="utf-8")
    return result


def goals_markdown(result: dict[str, Any]) -> str:
    """Markdown table of the ``goals`` study."""
    latency, low, high = result["latency_ms"], result["latency_ms_min"], result["latency_ms_max"]

    def cell(name: str) -> str:
        return f"{latency[name]:.0f} [{low[name]:.0f}-{high[name]:.0f}]"

    passed = result["goals"]
    lines = [
        f"{result['backbone']}, {result['image_size']} px, batch {result['batch_size']}, "
        f"{result['threads']} CPU threads; median of {result['repeats']} interleaved calls [min-max], ms.",
        "",
        "| measurement | latency (ms) |",
        "| --- | --- |",
        f"| EA2DModel eval (fast path, as built) | {cell('ea2d')} |",
        f"| EA2DModel eval, plain modules (`fast_inference=False`) | {cell('ea2d_plain')} |",
        f"| anomalib ReverseDistillationModel eval | {cell('reverse_distillation')} |",
        f"| EA2D Lightning forward (pre/post-processing), torch eager | {cell('torch_full')} |",
        f"| same graph, OpenVINO FP32 (`INFERENCE_PRECISION_HINT=f32`) | {cell('openvino_fp32')} |",
        f"| same graph, OpenVINO INT8 (PTQ) | {cell('openvino_int8')} |",
        "",
        "| goal | measured | met |",
        "| --- | --- | --- |",
        f"| EA2D / Reverse Distillation torch latency <= 1.25 | {result['ea2d_over_rd']:.2f} "
        f"(plain modules: {result['ea2d_plain_over_rd']:.2f}) | {'yes' if passed['ea2d_over_rd <= 1.25'] else 'no'} |",
        f"| OpenVINO FP32 speed-up over torch eager >= 1.5 | {result['openvino_fp32_speedup']:.2f} "
        f"| {'yes' if passed['openvino_fp32_speedup >= 1.5'] else 'no'} |",
        f"| OpenVINO INT8 speed-up over torch eager >= 2.5 | {result['openvino_int8_speedup']:.2f} "
        f"| {'yes' if passed['openvino_int8_speedup >= 2.5'] else 'no'} |",
        f"| Lightning step / plain torch step <= 1.1 ({result['train_backbone']}, {result['train_image_size']} px, "
        f"batch {result['train_batch_size']}: {result['lightning_step_ms']:.0f} vs {result['plain_step_ms']:.0f} ms) "
        f"| {result['lightning_over_plain']:.2f} | {'yes' if passed['lightning_over_plain <= 1.1'] else 'no'} |",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# ablation
# --------------------------------------------------------------------------------------------------


class OneViewEA2DModel(EA2DModel):
    """EA2D without the rotated view (ablation): the encoder, the first view's attention and decoder only.

    Training features repeat the one view for :class:`~anomalib_ea2d.EA2DLoss`, which must then
    weight the second view and the contrastive term with 0; eval scores and maps come from the
    one view.

    Example:
        >>> model = OneViewEA2DModel(backbone="resnet18", pre_trained=False).eval()
        >>> model(torch.rand(1, 3, 64, 64)).anomaly_map.shape
        torch.Size([1, 1, 64, 64])
    """

    def __init__(self, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(**kwargs)
        del self.branches[1]  # the rotated view's attention and decoder

    def features(self, images: torch.Tensor) -> EA2DFeatures:
        """Encoder maps, reconstructions and pooled deepest map of the image view, repeated as two views."""
        if images.shape[-1] % INPUT_MULTIPLE or images.shape[-2] % INPUT_MULTIPLE:
            msg = f"Input sides must be multiples of {INPUT_MULTIPLE}, got {tuple(images.shape[-2:])}; resize them."
            raise ValueError(msg)
        encoded = self.encoder(images)
        _, e2, e3, e4 = encoded
        decoded = self.branches[0](e2, e3, e4)
        pooled = e4.mean(dim=(2, 3))
        return EA2DFeatures(encoder=[encoded[:3]] * 2, decoder=[decoded] * 2, pooled=[pooled] * 2)

    def forward(self, images: torch.Tensor) -> EA2DFeatures | InferenceBatch:
        """Training features, or the one view's score and map in eval mode."""
        features = self.features(images)
        if self.training:
            return features
        view_map = view_anomaly_map(features.encoder[0], features.decoder[0])
        generator = self.anomaly_map_generator
        return InferenceBatch(
            pred_score=generator.reduce(view_map), anomaly_map=generator.to_image(view_map, images.shape[-2:])
        )


def build_ablation(variant: str, backbone: str, image_size: int, max_steps: int) -> Any:  # noqa: ANN401
    """EA2D with one ablation switch (:data:`ABLATIONS`), built through :func:`build_model`.

    ``no_attention`` replaces the attention skips by identities (what ``gamma`` fixed at 0
    computes); ``one_view`` drops the rotated view (its attention and decoder are removed, its loss
    weight and the contrastive weight are 0); ``no_contrastive`` sets ``contrastive_weight=0``; ``frozen_encoder``
    sets ``encoder_lr=0`` (the encoder's BatchNorm statistics still follow the data).
    """
    ea2d_args: dict[str, Any] = {
        "full": {},
        "no_attention": {},
        "one_view": {"view2_weight": 0.0, "contrastive_weight": 0.0},
        "no_contrastive": {"contrastive_weight": 0.0},
        "frozen_encoder": {"encoder_lr": 0.0},
    }.get(variant)
    if ea2d_args is None:
        msg = f"Unknown ablation {variant!r}; choose from {', '.join(ABLATIONS)}."
        raise ValueError(msg)
    model = build_model("ea2d", backbone, image_size, max_steps, ea2d_args=ea2d_args)
    if variant == "no_attention":
        for branch in model.model.branches:
            branch.attention_e2 = nn.Identity()
            branch.attention_e3 = nn.Identity()
    elif variant == "one_view":
        hparams = model.hparams
        model.model = OneViewEA2DModel(
            backbone=backbone,
            pre_trained=False,
            freeze_encoder_bn=hparams.freeze_encoder_bn,
            score_reduction=hparams.score_reduction,
            sigma=hparams.sigma,
            bn_momentum=hparams.bn_momentum,
        )
    return model


@dataclass
class AblationConfig:
    """Settings of the ``ablation`` study.

    Attributes:
        variants: EA2D variants (:data:`ABLATIONS`).
        seeds: Seeds of model initialisation and data order.
        backbone: ResNet backbone.
        train_steps: Optimizer steps of every run (the same budget).
        train_batch_size: Training batch size.
        eval_batch_size: Test batch size.
        threads: CPU threads.
        data: The synthetic set.
    """

    variants: tuple[str, ...] = ABLATIONS
    seeds: tuple[int, ...] = (0, 1, 2)
    backbone: str = "resnet18"
    train_steps: int = 40
    train_batch_size: int = 8
    eval_batch_size: int = 32
    threads: int | None = None
    data: DataSpec = field(default_factory=DataSpec)


@_quiet_lightning()
def ablation_run(variant: str, seed: int, config: AblationConfig, output: Path) -> dict[str, Any]:
    """Train and test one EA2D variant with one seed."""
    set_threads(config.threads)
    seed_everything(seed, workers=True)
    datamodule = config.data.datamodule(output, config.train_batch_size, config.eval_batch_size)
    model = build_ablation(variant, config.backbone, config.data.image_size, config.train_steps)
    timer = StepTimer()
    engine = _engine(output / "work" / f"ablation_{variant}_{seed}", "ea2d", config.train_steps, [timer])
    start = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    metrics = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    return {
        "variant": variant,
        "seed": seed,
        "fit_s": fit_seconds,
        "step_ms": statistics.median(timer.samples[1:] or timer.samples) * 1e3,
        "parameters_m": sum(p.numel() for p in model.model.parameters()) / 1e6,
        **{key: float(metrics[key]) for key in METRIC_KEYS},
    }


def run_ablation(config: AblationConfig, output: Path) -> list[dict[str, Any]]:
    """Run every variant with every seed; writes ``ablation.csv`` (runs) and ``ablation.md`` (mean +- std)."""
    output.mkdir(parents=True, exist_ok=True)
    config.data.datamodule(output, config.train_batch_size, config.eval_batch_size).prepare_data()
    rows = [ablation_run(variant, seed, config, output) for seed in config.seeds for variant in config.variants]
    _write_csv(output / "ablation.csv", rows)
    (output / "ablation.md").write_text(ablation_markdown(rows, config), encoding="utf-8")
    return rows


def ablation_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation per variant of every metric (and of the step time)."""
    summary = []
    for variant in dict.fromkeys(row["variant"] for row in rows):
        runs = [row for row in rows if row["variant"] == variant]
        entry: dict[str, Any] = {"variant": variant, "runs": len(runs)}
        for key in (*METRIC_KEYS, "step_ms", "parameters_m"):
            values = [row[key] for row in runs]
            entry[key] = statistics.fmean(values)
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
        summary.append(entry)
    return summary


def ablation_markdown(rows: Sequence[dict[str, Any]], config: AblationConfig) -> str:
    """Markdown table of the ``ablation`` study."""
    lines = [
        f"EA2D {config.backbone} (random init), {config.data.image_size} px, {config.train_steps} steps of batch "
        f"{config.train_batch_size} per run, seeds {', '.join(map(str, config.seeds))}; mean +- sample std.",
        "",
        "| variant | image AUROC | image F1 | pixel AUROC | pixel AUPRO | PRO@0.5 | step (ms) | parameters (M) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in ablation_summary(rows):
        cells = [f"{entry[key]:.3f} +- {_fmt(entry[f'{key}_std'])}" for key in METRIC_KEYS]
        lines.append(
            f"| {entry['variant']} | "
            + " | ".join(cells)
            + f" | {entry['step_ms']:.0f} | {entry['parameters_m']:.1f} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# presets, report and command line
# --------------------------------------------------------------------------------------------------


def presets(name: str, data_root: Path | None = None) -> dict[str, Any]:
    """Study configurations of a preset: ``"full"`` (the documented CPU run) or ``"smoke"`` (seconds)."""
    if name == "full":
        data = DataSpec(root=data_root)
        return {
            "compare": CompareConfig(data=data),
            "scaling": ScalingConfig(),
            "goals": GoalsConfig(data=data),
            "ablation": AblationConfig(data=data),
        }
    if name == "smoke":
        data = DataSpec(root=data_root, image_size=64, num_train=8, num_test_normal=4, num_test_abnormal=4)
        return {
            "compare": CompareConfig(
                backbone="resnet18",
                train_steps=2,
                train_batch_size=4,
                eval_batch_size=4,
                batch_sizes=(1, 4),
                repeats=2,
                warmup=1,
                data=data,
            ),
            "scaling": ScalingConfig(
                backbone="resnet18", sizes=(64, 96), batches=(1, 2), batch_size_image=64, repeats=2
            ),
            "goals": GoalsConfig(
                backbone="resnet18",
                image_size=64,
                batch_size=2,
                repeats=2,
                train_image_size=64,
                train_batch_size=4,
                train_steps=2,
                data=data,
                calibration=DataSpec(root=None, image_size=64, num_train=4, num_test_normal=4, num_test_abnormal=4),
            ),
            "ablation": AblationConfig(
                seeds=(0, 1), train_steps=2, train_batch_size=4, eval_batch_size=4, data=data, variants=ABLATIONS
            ),
        }
    msg = f"Unknown preset {name!r}; choose 'full' or 'smoke'."
    raise ValueError(msg)


def write_report(output: Path, info: dict[str, Any], commands: Sequence[str], seconds: dict[str, float]) -> Path:
    """Collect the studies' markdown files under ``output`` into ``report.md``."""
    sections = [
        "# EA2D benchmark report",
        "",
        "## Machine",
        "",
        "| item | value |",
        "| --- | --- |",
        *[f"| {key} | {value} |" for key, value in info.items()],
        "",
        "## Commands",
        "",
        "```bash",
        *commands,
        "```",
        "",
        "Wall time per study (s): " + ", ".join(f"{name} {value:.0f}" for name, value in seconds.items()),
    ]
    for study in ("compare", "goals", "scaling", "ablation"):
        path = output / f"{study}.md"
        if path.is_file():
            sections += ["", f"## {study}", "", path.read_text(encoding="utf-8")]
    report = output / "report.md"
    report.write_text("\n".join(sections) + "\n", encoding="utf-8")
    return report


STUDIES = ("compare", "goals", "scaling", "ablation")


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m anomalib_ea2d.benchmark``."""
    parser = argparse.ArgumentParser(
        prog="python -m anomalib_ea2d.benchmark",
        description="Benchmark EA2D against anomalib's PatchCore and Reverse Distillation on the synthetic brain set.",
    )
    parser.add_argument("study", choices=(*STUDIES, "all"), help="Study to run ('all': every study and report.md).")
    parser.add_argument("--output", type=Path, required=True, help="Folder for CSV, markdown and plot files.")
    parser.add_argument("--preset", choices=("full", "smoke"), default="full", help="Sizes (default: full).")
    parser.add_argument("--data-root", type=Path, help="Folder of the generated synthetic set (default: OUTPUT/data).")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, help="compare: models (default: all).")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, help="compare: back-ends (default: all).")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all; goals: 2).")
    parser.add_argument("--seeds", nargs="+", type=int, help="ablation: seeds.")
    parser.add_argument("--no-isolate", action="store_true", help="compare: run every model in this process.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the requested studies; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logger.setLevel(logging.INFO)
    configs = presets(args.preset, args.data_root)
    if args.models:
        configs["compare"].models = tuple(args.models)
    if args.backends:
        configs["compare"].backends = tuple(args.backends)
    if args.seeds:
        configs["ablation"].seeds = tuple(args.seeds)
    if args.threads:
        for config in configs.values():
            config.threads = args.threads
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    studies = STUDIES if args.study == "all" else (args.study,)
    info = machine_info(configs["compare"].threads)
    seconds = {}
    for study in studies:
        start = time.perf_counter()
        if study == "compare":
            run_compare(configs["compare"], output, isolate=not args.no_isolate)
        elif study == "scaling":
            run_scaling(configs["scaling"], output)
        elif study == "goals":
            run_goals(configs["goals"], output)
        else:
            run_ablation(configs["ablation"], output)
        seconds[study] = time.perf_counter() - start
        logger.info("%s done in %.0f s", study, seconds[study])
    info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    config_dump = {name: dataclasses.asdict(config) for name, config in configs.items() if name in studies}
    (output / "config.json").write_text(json.dumps(config_dump, indent=2, default=str), encoding="utf-8")
    command = "python -m anomalib_ea2d.benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
    report = write_report(output, info, [command], seconds)
    logger.info("report: %s", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ABLATIONS",
    "BACKENDS",
    "MODEL_NAMES",
    "AblationConfig",
    "CompareConfig",
    "DataSpec",
    "GoalsConfig",
    "PeakRSS",
    "ScalingConfig",
    "build_ablation",
    "build_model",
    "compute_metrics",
    "main",
    "run_ablation",
    "run_compare",
    "run_goals",
    "run_scaling",
    "summarize",
    "time_calls",
]
