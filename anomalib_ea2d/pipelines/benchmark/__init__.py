"""Benchmarks of EA2D against anomalib's PatchCore, Reverse Distillation and UniNet on the synthetic brain set.

Five studies, each a module of this package and a sub-command of ``python -m anomalib_ea2d.pipelines.benchmark``:

``compare``
    Each model trained with several seeds and tested with anomalib's Engine on the same data and
    input size, as anomalib builds it and again with a region of interest and an operating point
    at a chosen specificity; accuracy (mean +- sd), training cost, throughput in torch eager and
    OpenVINO FP32/INT8, the accuracy of each export, peak RSS, size on disk.
``scaling``
    EA2D inference time, peak RSS and the attention's share versus input size and batch.
``goals``
    The speed ratios EA2D is held to (thresholds in ``configs/benchmark/goal_thresholds.yaml``):
    latency, FLOPs and time per FLOP of EA2D and Reverse Distillation, every path's share of the
    FP32 peak measured in the same run, OpenVINO's per-layer profile, ``anomalib predict`` images/s.
``ablation``
    EA2D without attention skips, with one view, without the contrastive term, with a frozen
    encoder, next to the full model; several seeds.
``gpu``
    Training-step time (fp32, bf16 autocast, channels-last, ``torch.compile``) and eval throughput
    (fused and plain) on one CUDA device, with their fractions of its peak (needs no anomalib).

``all`` runs the four CPU studies. Sizes come from a preset YAML file (``--preset full``, the
default, or ``smoke``; see :mod:`~anomalib_ea2d.pipelines.benchmark.config`). The other modules:
:mod:`~anomalib_ea2d.pipelines.benchmark.measure` (timing, memory), :mod:`~anomalib_ea2d.pipelines.benchmark.builders`
(data, models, trainers), :mod:`~anomalib_ea2d.pipelines.benchmark.metrics`,
:mod:`~anomalib_ea2d.pipelines.benchmark.backends` (torch, OpenVINO),
:mod:`~anomalib_ea2d.pipelines.benchmark.flops` (FLOP counts, measured peaks),
:mod:`~anomalib_ea2d.pipelines.benchmark.report`
(CSV, JSON, markdown, plots, ``report.md``) and :mod:`~anomalib_ea2d.pipelines.benchmark.cli`. Timings are
medians over repetitions with their spread; an error stops the run with its traceback. No
pretrained weights are downloaded, so accuracies measure the pipeline on the synthetic set, not
the methods at their best.

Attributes are imported on first use, so that the ``gpu`` study runs where anomalib is missing.

Example:
    A seconds-long smoke run (the test suite runs one)::

        python -m anomalib_ea2d.pipelines.benchmark compare --preset smoke --output /tmp/bench
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.pipelines.benchmark.ablation import build_ablation, run_ablation
    from anomalib_ea2d.pipelines.benchmark.builders import build_model, quiet_lightning
    from anomalib_ea2d.pipelines.benchmark.cli import main
    from anomalib_ea2d.pipelines.benchmark.compare import run_compare
    from anomalib_ea2d.pipelines.benchmark.config import (
        ABLATIONS,
        BACKENDS,
        MODEL_NAMES,
        AblationConfig,
        CompareConfig,
        DataSpec,
        GoalsConfig,
        GoalThresholds,
        GpuConfig,
        ScalingConfig,
        load_preset,
    )
    from anomalib_ea2d.pipelines.benchmark.goals import run_goals
    from anomalib_ea2d.pipelines.benchmark.gpu import run_gpu
    from anomalib_ea2d.pipelines.benchmark.measure import PeakRSS, summarize, time_calls
    from anomalib_ea2d.pipelines.benchmark.metrics import METRIC_KEYS, compute_metrics
    from anomalib_ea2d.pipelines.benchmark.scaling import run_scaling

_EXPORTS = {
    "build_ablation": "anomalib_ea2d.pipelines.benchmark.ablation",
    "run_ablation": "anomalib_ea2d.pipelines.benchmark.ablation",
    "build_model": "anomalib_ea2d.pipelines.benchmark.builders",
    "quiet_lightning": "anomalib_ea2d.pipelines.benchmark.builders",
    "main": "anomalib_ea2d.pipelines.benchmark.cli",
    "run_compare": "anomalib_ea2d.pipelines.benchmark.compare",
    "ABLATIONS": "anomalib_ea2d.pipelines.benchmark.config",
    "AblationConfig": "anomalib_ea2d.pipelines.benchmark.config",
    "BACKENDS": "anomalib_ea2d.pipelines.benchmark.config",
    "CompareConfig": "anomalib_ea2d.pipelines.benchmark.config",
    "DataSpec": "anomalib_ea2d.pipelines.benchmark.config",
    "GoalThresholds": "anomalib_ea2d.pipelines.benchmark.config",
    "GoalsConfig": "anomalib_ea2d.pipelines.benchmark.config",
    "GpuConfig": "anomalib_ea2d.pipelines.benchmark.config",
    "MODEL_NAMES": "anomalib_ea2d.pipelines.benchmark.config",
    "ScalingConfig": "anomalib_ea2d.pipelines.benchmark.config",
    "load_preset": "anomalib_ea2d.pipelines.benchmark.config",
    "run_goals": "anomalib_ea2d.pipelines.benchmark.goals",
    "run_gpu": "anomalib_ea2d.pipelines.benchmark.gpu",
    "PeakRSS": "anomalib_ea2d.pipelines.benchmark.measure",
    "summarize": "anomalib_ea2d.pipelines.benchmark.measure",
    "time_calls": "anomalib_ea2d.pipelines.benchmark.measure",
    "METRIC_KEYS": "anomalib_ea2d.pipelines.benchmark.metrics",
    "compute_metrics": "anomalib_ea2d.pipelines.benchmark.metrics",
    "run_scaling": "anomalib_ea2d.pipelines.benchmark.scaling",
}

__all__ = [
    "ABLATIONS",
    "BACKENDS",
    "METRIC_KEYS",
    "MODEL_NAMES",
    "AblationConfig",
    "CompareConfig",
    "DataSpec",
    "GoalThresholds",
    "GoalsConfig",
    "GpuConfig",
    "PeakRSS",
    "ScalingConfig",
    "build_ablation",
    "build_model",
    "compute_metrics",
    "load_preset",
    "main",
    "quiet_lightning",
    "run_ablation",
    "run_compare",
    "run_goals",
    "run_gpu",
    "run_scaling",
    "summarize",
    "time_calls",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
