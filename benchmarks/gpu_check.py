"""GPU timings of the EA2D torch model: training step and inference throughput.

Runs the committed ``EA2DModel``/``EA2DLoss`` with the paper's optimiser recipe (AdamW, two learning
rates, weight decay 1e-4, gradient-norm clipping 1.0) in a plain torch loop on one CUDA device, at
the paper's size (ResNet-50, 256 px, batch 32). Only ``torch`` and ``timm`` are needed: where
anomalib is not installed (a bare GPU machine), its one class the torch model uses, ``InferenceBatch``,
is replaced by a stand-in with the same fields.

    python benchmarks/gpu_check.py --output gpu.json            # on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --size 64 --batch 2 --steps 2   # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path
from typing import NamedTuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _stand_in_anomalib() -> None:
    """Register a minimal ``anomalib.data.InferenceBatch`` when anomalib is not installed."""
    try:
        import anomalib.data  # noqa: F401, PLC0415
    except ImportError:

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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, warmup: int, repeats: int) -> list[float]:  # noqa: ANN001
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _summary(times: list[float], images: int) -> dict[str, float]:
    ordered = sorted(times)
    median = ordered[len(ordered) // 2]
    return {
        "median_ms": round(1000 * median, 2),
        "min_ms": round(1000 * ordered[0], 2),
        "max_ms": round(1000 * ordered[-1], 2),
        "images_per_s": round(images / median, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    _stand_in_anomalib()
    from anomalib_ea2d.loss import EA2DLoss  # noqa: PLC0415
    from anomalib_ea2d.torch_model import EA2DModel  # noqa: PLC0415

    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = EA2DModel(backbone=args.backbone, pre_trained=False, bn_momentum=0.01).to(device)
    loss_fn = EA2DLoss()
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    optimizer = torch.optim.AdamW(
        [
            {"params": list(model.encoder.parameters()), "lr": 1e-5},
            {"params": [p for p in model.parameters() if id(p) not in encoder_ids], "lr": 5e-4},
        ],
        weight_decay=1e-4,
    )
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "backbone": args.backbone,
        "size": args.size,
        "batch": args.batch,
    }

    def train_step(autocast: bool) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model(images))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    warmup = max(2, args.steps // 4)
    for name, autocast in (("train_step_fp32", False), ("train_step_bf16_autocast", True)):
        model.train()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = _timed(lambda autocast=autocast: train_step(autocast), device, warmup, args.steps)
        results[name] = _summary(times, args.batch)
        if device.type == "cuda":
            results[name]["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        print(name, results[name], flush=True)

    model.eval()
    for batch in (1, args.batch):
        for name, autocast in (("fp32", False), ("bf16_autocast", True)):
            for fast in (True, False):
                if hasattr(model, "fast_inference"):
                    model.fast_inference = fast
                elif not fast:
                    continue
                batch_images = images[:batch]

                def infer(autocast: bool = autocast, batch_images: torch.Tensor = batch_images) -> None:
                    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                        model(batch_images)

                key = f"eval_b{batch}_{name}{'' if fast else '_plain_modules'}"
                results[key] = _summary(_timed(infer, device, warmup, args.steps), batch)
                print(key, results[key], flush=True)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
