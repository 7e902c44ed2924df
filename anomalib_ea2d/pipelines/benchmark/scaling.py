"""The ``scaling`` study: EA2D inference time, peak RSS and the attention's share versus input size and batch.

The self-attention modules are quadratic in the number of feature positions, so their share of
time and FLOPs grows with the input size. EA2D runs in eval mode with random weights (BatchNorm
statistics and attention gammas set as a trained model has them). Writes ``scaling.csv`` and
``scaling.md``.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from anomalib_ea2d.models.image.ea2d.components import SelfAttention2d
from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel
from anomalib_ea2d.pipelines.benchmark.builders import randomise_eval_state
from anomalib_ea2d.pipelines.benchmark.config import ScalingConfig
from anomalib_ea2d.pipelines.benchmark.measure import PeakRSS, set_threads, summarize
from anomalib_ea2d.pipelines.benchmark.report import Table, fmt, fmt_range, write_study

logger = logging.getLogger(__name__)


def attention_flops(model: nn.Module, batch: int, size: int) -> float:
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


def model_flops(model: nn.Module, images: torch.Tensor) -> float:
    """FLOPs of one forward call, counted by torch's ``FlopCounterMode``."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(images)
    return float(counter.get_total_flops())


class AttentionClock:
    """Forward hooks summing the wall time spent inside every ``SelfAttention2d`` of a model.

    Example:
        >>> model = EA2DModel(backbone="resnet18", pre_trained=False).eval()
        >>> clock = AttentionClock(model)
        >>> with torch.inference_mode():
        ...     _ = model(torch.rand(1, 3, 64, 64))
        >>> clock.seconds > 0
        True
        >>> clock.remove()
    """

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


def _measure_point(model: nn.Module, clock: AttentionClock, batch: int, size: int, repeats: int) -> dict[str, Any]:
    images = torch.randn(batch, 3, size, size)
    flops = model_flops(model, images)  # also the warm-up call
    with PeakRSS() as rss:
        latencies, attention = [], []
        for _ in range(repeats):
            clock.seconds = 0.0
            start = time.perf_counter()
            with torch.inference_mode():
                model(images)
            latencies.append(time.perf_counter() - start)
            attention.append(clock.seconds)
    summary = summarize(latencies)
    return {
        "batch": batch,
        "size": size,
        "latency_ms": summary["median"] * 1e3,
        "latency_ms_min": summary["min"] * 1e3,
        "latency_ms_max": summary["max"] * 1e3,
        "ms_per_image": summary["median"] * 1e3 / batch,
        "attention_ms": statistics.median(attention) * 1e3,
        "attention_share": statistics.median(a / t for a, t in zip(attention, latencies, strict=True)),
        "gflops": flops / 1e9,
        "attention_flop_share": attention_flops(model, batch, size) / flops if flops else math.nan,
        "attention_matrix_mib": batch * (size // 8) ** 4 * 4 / 2**20,
        "peak_rss_mib": rss.mib,
    }


def run_scaling(config: ScalingConfig, output: Path) -> list[dict[str, Any]]:
    """EA2D latency, attention share and peak RSS versus input size and batch; writes ``scaling.*``."""
    threads = set_threads(config.threads)
    torch.manual_seed(0)
    model = EA2DModel(backbone=config.backbone, pre_trained=False).eval()
    randomise_eval_state(model)
    clock = AttentionClock(model)
    points = [(1, size) for size in config.sizes]
    points += [
        (batch, config.batch_size_image) for batch in config.batches if (batch, config.batch_size_image) not in points
    ]
    rows = []
    try:
        for batch, size in points:
            rows.append(
                {
                    "backbone": config.backbone,
                    "threads": threads,
                    **_measure_point(model, clock, batch, size, config.repeats),
                }
            )
            logger.info("scaling: %s", rows[-1])
    finally:
        clock.remove()
    write_study(output, "scaling", [scaling_table(rows, config)], csv={"scaling.csv": rows})
    return rows


def scaling_table(rows: Sequence[dict[str, Any]], config: ScalingConfig) -> Table:
    """Markdown table of the ``scaling`` study."""
    table = Table(
        header=[
            "batch",
            "size",
            "latency (ms)",
            "ms / image",
            "attention (ms)",
            "attention time share",
            "attention FLOP share",
            "GFLOPs",
            "largest attention matrix (MiB)",
            "peak RSS (MiB)",
        ],
        caption=f"EA2D {config.backbone}, eval mode, {rows[0]['threads'] if rows else '?'} CPU threads, median of "
        f"{config.repeats} calls [min-max]. Attention = the four `SelfAttention2d` modules (two per view), "
        "timed with forward hooks; its FLOP share counts only the two attention products.",
    )
    for row in rows:
        table.rows.append(
            [
                str(row["batch"]),
                str(row["size"]),
                fmt_range(row["latency_ms"], row["latency_ms_min"], row["latency_ms_max"]),
                fmt(row["ms_per_image"], 0),
                fmt(row["attention_ms"], 0),
                f"{row['attention_share']:.0%}",
                f"{row['attention_flop_share']:.0%}",
                fmt(row["gflops"], 1),
                fmt(row["attention_matrix_mib"], 0),
                fmt(row["peak_rss_mib"], 0),
            ]
        )
    return table


__all__ = ["AttentionClock", "attention_flops", "model_flops", "run_scaling", "scaling_table"]
