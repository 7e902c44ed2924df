"""The ``gpu`` study: EA2D training-step time and eval throughput on one device, in a plain torch loop.

Runs the committed ``EA2DModel``/``EA2DLoss`` with the paper's optimiser recipe (AdamW, two
learning rates, weight decay 1e-4, gradient-norm clipping 1.0) at the preset's size (``full``: the
paper's ResNet-50, 256 px, batch 32 on ``cuda``): training steps in fp32, with bf16 autocast, then
also channels-last, then also ``torch.compile`` (:mod:`~anomalib_ea2d.pipelines.benchmark.gpu_steps`), each
with its FLOP/s as a fraction of the device's peak measured in the same run; eval at batch 1 and
the full batch, on the fused inference copy (``EA2DModel.fuse()``, what ``EA2D``'s test and predict
steps run) and on the plain modules. The ``smoke`` preset runs it all on the CPU at a tiny size
(``torch.compile`` with the ``aot_eager`` backend, no C++ build). Only torch, timm,
Lightning and jsonargparse are needed: where anomalib is not installed (a bare GPU machine), its one
class the torch model uses, ``InferenceBatch``, is replaced by a stand-in with the same fields.
Writes ``gpu.json`` and ``gpu.md``.

Example:
    On a CUDA machine, from a source checkout::

        python -m anomalib_ea2d.pipelines.benchmark gpu --output results/gpu
"""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path
from typing import Any, NamedTuple

import torch

from anomalib_ea2d.pipelines.benchmark.config import GpuConfig
from anomalib_ea2d.pipelines.benchmark.flops import count_flops
from anomalib_ea2d.pipelines.benchmark.gpu_steps import TRAIN_VARIANTS, measure_peaks, training_step
from anomalib_ea2d.pipelines.benchmark.measure import summarize, time_calls
from anomalib_ea2d.pipelines.benchmark.report import Table, fmt, fmt_range, write_study

logger = logging.getLogger(__name__)


def install_anomalib_stand_in() -> bool:
    """Register a minimal ``anomalib.data.InferenceBatch`` when anomalib is not installed; whether it did."""
    try:
        import anomalib.data  # noqa: F401, PLC0415 - the torch model's one anomalib import
    except ImportError:
        pass
    else:
        return False

    class InferenceBatch(NamedTuple):
        pred_score: torch.Tensor | None = None
        pred_label: torch.Tensor | None = None
        anomaly_map: torch.Tensor | None = None
        pred_mask: torch.Tensor | None = None

    package = types.ModuleType("anomalib")
    package.__path__ = []
    data = types.ModuleType("anomalib.data")
    data.InferenceBatch = InferenceBatch
    package.data = data
    sys.modules.update({"anomalib": package, "anomalib.data": data})
    logger.info("gpu: anomalib is not installed; using a stand-in for anomalib.data.InferenceBatch")
    return True


def _summary(seconds: list[float], images: int) -> dict[str, float]:
    """Milliseconds per call (median, min, max) and images per second at the median."""
    summary = summarize(seconds)
    return {
        "median_ms": round(1000 * summary["median"], 2),
        "min_ms": round(1000 * summary["min"], 2),
        "max_ms": round(1000 * summary["max"], 2),
        "images_per_s": images / summary["median"],
    }


def run_gpu(config: GpuConfig, output: Path) -> dict[str, Any]:
    """Time training steps and eval calls on ``config.device``; writes ``gpu.json`` and ``gpu.md``."""
    install_anomalib_stand_in()
    from anomalib_ea2d.models.image.ea2d.loss import EA2DLoss  # noqa: PLC0415 - after the stand-in
    from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel  # noqa: PLC0415

    device = torch.device(config.device)
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else None
    torch.backends.cudnn.benchmark = True

    def new_model() -> EA2DModel:
        torch.manual_seed(0)  # every variant starts from the same weights
        return EA2DModel(backbone=config.backbone, pre_trained=False, bn_momentum=0.01).to(device)

    loss_fn = EA2DLoss()
    images = torch.randn(config.batch, 3, config.size, config.size, device=device)
    warmup = max(2, config.steps // 4)
    peaks = measure_peaks(config.gemm_size, tuple(config.conv1x1), device, config.steps, sync)
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch": torch.__version__,
        "backbone": config.backbone,
        "size": config.size,
        "batch": config.batch,
        "compile_backend": config.compile_backend,
        "peak_tflops": {"fp32": peaks["fp32"] / 1e12, "bf16": peaks["bf16"] / 1e12},
        "peak_kernels_tflops": {name: rate / 1e3 for name, rate in peaks["kernels"].items()},
    }

    def add_rates(summary: dict[str, float], flops: float, precision: str) -> dict[str, float]:
        """FLOP/s at the median time, and as a fraction of the same-run peak of ``precision``."""
        summary["tflops"] = flops / (summary["median_ms"] / 1e3) / 1e12
        summary["fraction_of_peak"] = summary["tflops"] * 1e12 / peaks[precision]
        return summary

    for name, variant in TRAIN_VARIANTS.items():
        key = f"train_step_{name}"
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        step, flops = training_step(new_model(), loss_fn, images, variant, config.compile_backend)
        seconds = time_calls(step, config.steps, warmup, sync)
        results[key] = add_rates(_summary(seconds, config.batch), flops, variant.precision)
        if cuda:
            results[key]["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        logger.info("gpu: %s %s", key, results[key])

    model = new_model().eval()
    for batch in (1, config.batch):
        for name, autocast in (("fp32", False), ("bf16_autocast", True)):
            for fast in (True, False):
                if fast and not hasattr(model, "fuse"):
                    continue  # a stand-in model without fuse() has one eval path
                network = model.fuse() if fast else model
                batch_images = images[:batch]

                def infer(
                    autocast: bool = autocast,
                    batch_images: torch.Tensor = batch_images,
                    network: torch.nn.Module = network,
                ) -> None:
                    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                        network(batch_images)

                key = f"eval_b{batch}_{name}{'' if fast else '_plain_modules'}"
                flops = count_flops(lambda network=network, batch_images=batch_images: network(batch_images)).total
                summary = _summary(time_calls(infer, config.steps, warmup, sync), batch)
                results[key] = add_rates(summary, flops, "bf16" if autocast else "fp32")
                logger.info("gpu: %s %s", key, results[key])
    write_study(output, "gpu", [gpu_table(results, config)], json_files={"gpu.json": results})
    return results


def gpu_table(results: dict[str, Any], config: GpuConfig) -> Table:
    """Markdown table of the ``gpu`` study."""
    peak = results["peak_tflops"]
    table = Table(
        header=[
            "measurement",
            "ms per call, median [min-max]",
            "images/s",
            "TFLOP/s",
            "of peak",
            "peak memory (GiB)",
        ],
        caption=f"{results['device']} (torch {results['torch']}), {config.backbone}, {config.size} px, batch "
        f"{config.batch}; median of {config.steps} calls after warm-up. Training: the ladder fp32 -> bf16 "
        f"autocast -> + channels-last -> + torch.compile (backend {results['compile_backend']}). Eval keys: "
        "batch, precision, and `_plain_modules` for the plain modules (otherwise the fused inference copy). "
        f"Peaks measured in the same run: fp32 {peak['fp32']:.3g} TFLOP/s (convolutions in TF32 on CUDA), "
        f"bf16 {peak['bf16']:.3g} TFLOP/s; FLOPs counted by torch's FlopCounterMode (a training step: "
        "forward and backward).",
    )
    for key, summary in results.items():
        if isinstance(summary, dict) and "median_ms" in summary:
            table.rows.append(
                [
                    key,
                    fmt_range(summary["median_ms"], summary["min_ms"], summary["max_ms"], 2),
                    fmt(summary["images_per_s"], 1),
                    f"{summary['tflops']:.3g}",
                    f"{100 * summary['fraction_of_peak']:.0f} %",
                    fmt(summary.get("peak_memory_gib", float("nan")), 2),
                ]
            )
    return table


__all__ = ["gpu_table", "install_anomalib_stand_in", "run_gpu"]
