"""GPU timings of EA2D next to anomalib's Reverse Distillation (torch only, random weights).

Training: seconds per optimizer step of a plain torch loop (each model's own loss and optimizer
recipe), at 256 px, batch 32, ResNet-50, in fp32 (PyTorch defaults, i.e. TF32 convolutions) and
with bf16 autocast. Inference: images/s of the eval-mode models at batch 1 and 32, EA2D with its
fast path and with the plain modules. CUDA-event timing after warm-up, median of the repeats.

    python benchmarks/gpu.py --output gpu.json           # on a CUDA machine
    python benchmarks/gpu.py --output /tmp/g.json --tiny # seconds-long dry run (CPU works)
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerationMode
from anomalib.models.image.reverse_distillation.loss import ReverseDistillationLoss
from anomalib.models.image.reverse_distillation.torch_model import ReverseDistillationModel

from anomalib_ea2d.loss import EA2DLoss
from anomalib_ea2d.torch_model import EA2DModel


def timed(function: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds per call (CUDA events on a GPU, wall clock otherwise)."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            function()
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        else:
            begin = time.perf_counter()
            function()
            samples.append(time.perf_counter() - begin)
    return samples


def autocast(device: torch.device, bf16: bool) -> object:
    """bf16 autocast context, or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def ea2d_train_step(device: torch.device, backbone: str, bf16: bool) -> Callable[[torch.Tensor], None]:
    """One EA2D step as its Lightning module does it: AdamW (two learning rates), clipping at norm 1."""
    model = EA2DModel(backbone=backbone, pre_trained=False, bn_momentum=0.01).to(device).train()
    loss_fn = EA2DLoss()
    encoder = list(model.encoder.parameters())
    ids = {id(p) for p in encoder}
    rest = [p for p in model.parameters() if id(p) not in ids]
    optimizer = torch.optim.AdamW([{"params": encoder, "lr": 1e-5}, {"params": rest, "lr": 5e-4}], weight_decay=1e-4)

    def step(images: torch.Tensor) -> None:
        with autocast(device, bf16):
            loss = loss_fn(model(images))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def rd_train_step(device: torch.device, backbone: str, size: int, bf16: bool) -> Callable[[torch.Tensor], None]:
    """One Reverse Distillation step as anomalib's module does it: Adam on bottleneck and decoder."""
    model = ReverseDistillationModel(
        backbone=backbone,
        input_size=(size, size),
        layers=["layer1", "layer2", "layer3"],
        anomaly_map_mode=AnomalyMapGenerationMode.ADD,
        pre_trained=False,
    ).to(device)
    model.train()
    loss_fn = ReverseDistillationLoss()
    optimizer = torch.optim.Adam(
        [*model.decoder.parameters(), *model.bottleneck.parameters()], lr=0.005, betas=(0.5, 0.99)
    )

    def step(images: torch.Tensor) -> None:
        with autocast(device, bf16):
            loss = loss_fn(*model(images))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--tiny", action="store_true", help="resnet18, 64 px, few repeats (dry run)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    backbone, size, train_batch = ("resnet18", 64, 4) if args.tiny else ("resnet50", 256, 32)
    repeats, warmup = (2, 1) if args.tiny else (20, 5)
    result: dict = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "backbone": backbone,
        "size": size,
        "train_batch": train_batch,
        "repeats": repeats,
        "train_step_ms": {},
        "inference_images_per_s": {},
    }
    torch.manual_seed(0)
    images = torch.rand(train_batch, 3, size, size, device=device)
    for bf16 in (False, True):
        precision = "bf16" if bf16 else "fp32"
        for name, step in (
            ("ea2d", ea2d_train_step(device, backbone, bf16)),
            ("reverse_distillation", rd_train_step(device, backbone, size, bf16)),
        ):
            samples = timed(lambda step=step: step(images), repeats, warmup, device)
            result["train_step_ms"][f"{name}_{precision}"] = statistics.median(samples) * 1e3
            print(name, precision, "train step ms", round(statistics.median(samples) * 1e3, 1), flush=True)
            del step
            if device.type == "cuda":
                torch.cuda.empty_cache()

    ea2d = EA2DModel(backbone=backbone, pre_trained=False).to(device).eval()
    with torch.no_grad():
        for module in ea2d.modules():
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.1)
    plain = copy.deepcopy(ea2d)
    plain.fast_inference = False
    rd = ReverseDistillationModel(
        backbone=backbone,
        input_size=(size, size),
        layers=["layer1", "layer2", "layer3"],
        anomaly_map_mode=AnomalyMapGenerationMode.ADD,
        pre_trained=False,
    ).to(device)
    rd.eval()
    for batch in (1, 32):
        inputs = torch.rand(batch, 3, size, size, device=device)
        for bf16 in (False, True):
            precision = "bf16" if bf16 else "fp32"
            for name, model in (("ea2d", ea2d), ("ea2d_plain", plain), ("reverse_distillation", rd)):

                def run(model: torch.nn.Module = model, bf16: bool = bf16, inputs: torch.Tensor = inputs) -> None:
                    with torch.inference_mode(), autocast(device, bf16):
                        model(inputs)

                samples = timed(run, repeats, warmup, device)
                key = f"{name}_{precision}_b{batch}"
                result["inference_images_per_s"][key] = batch / statistics.median(samples)
                print(key, "images/s", round(batch / statistics.median(samples), 1), flush=True)
    if device.type == "cuda":
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    args.output.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
