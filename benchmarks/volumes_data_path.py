"""Speed and memory of the MedicalVolumes data path, against EA2D's training speed at the same image size.

Writes ``--volumes`` synthetic 182x218x182 volumes (1 mm, int16, smooth random content inside a
head-shaped ellipsoid; ``--format nii.gz`` or ``nii``), then in one process and interleaved
(round after round, so load changes on a shared machine hit both alike):

* **data path**: slices per second out of ``MedicalVolumes``' shuffled training loader (one slice
  read, percentile-scaled, 3 channels, resized to ``--size`` as the model's pre-processor would),
  ``num_workers=0`` — one core's worth;
* **training**: slices per second of EA2D training steps (ResNet-18, ``--size`` px, batch
  ``--batch``, the Lightning step's work in a plain loop) on in-memory batches.

A second, separate process sets up ``--rss-volumes`` volumes and reads ``--rss-batches`` batches;
its peak resident memory (kernel high-water mark, after the imports) is the data path's memory.

    python benchmarks/volumes_data_path.py --volumes 50 --rss-volumes 100 --size 128 --out /tmp/volbench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPE = (182, 218, 182)
MNI_AFFINE = np.array([[-1.0, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]])


def write_volumes(folder: Path, count: int, suffix: str, seed: int = 0) -> list[Path]:
    """``count`` volumes of smooth random content inside an ellipsoid, 1 mm, MNI-like affine (LAS storage)."""
    folder.mkdir(parents=True, exist_ok=True)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s, dtype=np.float32) for s in SHAPE], indexing="ij"))
    head = ((grid / np.array([0.8, 0.85, 0.8], np.float32)[:, None, None, None]) ** 2).sum(0) < 1
    del grid
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"vol_{index:03d}.{suffix}"
        paths.append(path)
        if path.exists():
            continue
        coarse = rng.normal(0, 1, (23, 28, 23)).astype(np.float32)
        field = ndimage.zoom(coarse, [s / c for s, c in zip(SHAPE, coarse.shape, strict=True)], order=1)
        data = np.where(head, 600 + 150 * field + rng.normal(0, 20, SHAPE).astype(np.float32), 0).astype(np.int16)
        nib.save(nib.Nifti1Image(data, MNI_AFFINE), path)
    return paths


def _datamodule(root: Path, batch: int, size: int):  # noqa: ANN202
    from torchvision.transforms.v2 import Resize  # noqa: PLC0415

    from anomalib_ea2d.data import MedicalVolumes  # noqa: PLC0415

    datamodule = MedicalVolumes(
        name="bench", root=root, normal_dir=".", test_split_mode="none", val_split_mode="none",
        train_batch_size=batch, num_workers=0, seed=0,
    )  # fmt: skip
    start = time.perf_counter()
    datamodule.setup()
    setup_seconds = time.perf_counter() - start
    datamodule.train_data.augmentations = Resize((size, size), antialias=True)
    return datamodule, setup_seconds


def measure_memory(root: Path, batch: int, size: int, batches: int) -> dict[str, float]:
    """Setup + ``batches`` shuffled batches; peak RSS after imports (run in its own process)."""
    import torch  # noqa: F401, PLC0415

    from anomalib_ea2d.pipelines.benchmark.measure import PeakRSS, _read_status_kib  # noqa: PLC0415

    baseline = (_read_status_kib("VmRSS") or 0) / 1024
    with PeakRSS() as rss:
        datamodule, setup_seconds = _datamodule(root, batch, size)
        loader = iter(datamodule.train_dataloader())
        for _ in range(batches):
            next(loader)
    return {
        "volumes": len(datamodule.train_data.volumes),
        "slices": len(datamodule.train_data),
        "setup_seconds": setup_seconds,
        "rss_after_imports_mib": baseline,
        "peak_rss_mib": rss.mib,
        "batches_read": batches,
    }


def measure_speed(root: Path, batch: int, size: int, rounds: int, steps: int) -> dict[str, float]:
    """Interleaved data-path and training throughput, slices per second."""
    import torch  # noqa: PLC0415

    from anomalib_ea2d import EA2D  # noqa: PLC0415
    from anomalib_ea2d.pipelines.benchmark.goals import _plain_training_step_seconds  # noqa: PLC0415

    datamodule, setup_seconds = _datamodule(root, batch, size)
    loader = iter(datamodule.train_dataloader())
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=size)
    images = [torch.rand(batch, 3, size, size) for _ in range(2)]
    _plain_training_step_seconds(model, images, 1)  # warm-up
    next(loader)
    data_seconds, train_seconds = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            try:
                next(loader)
            except StopIteration:
                loader = iter(datamodule.train_dataloader())
                next(loader)
        data_seconds.append((time.perf_counter() - start) / steps)
        train_seconds += _plain_training_step_seconds(model, images, steps)
    data_rate = batch / float(np.median(data_seconds))
    train_rate = batch / float(np.median(train_seconds))
    return {
        "setup_seconds": setup_seconds,
        "slices": len(datamodule.train_data),
        "data_path_slices_per_s": data_rate,
        "training_slices_per_s": train_rate,
        "ratio": data_rate / train_rate,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="work folder (volumes are cached there)")
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--rss-volumes", type=int, default=100)
    parser.add_argument("--format", choices=["nii.gz", "nii"], default="nii.gz")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="batches / training steps per round")
    parser.add_argument("--rss-batches", type=int, default=50)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data = args.out / f"data_{args.format.replace('.', '')}"
    if args.memory_only:
        print(json.dumps(measure_memory(data / "rss", args.batch, args.size, args.rss_batches)))
        return 0
    write_volumes(data / "rss", args.rss_volumes, args.format)
    speed_root = args.out / f"speed_{args.format.replace('.', '')}_{args.volumes}"
    speed_root.mkdir(parents=True, exist_ok=True)
    for path in sorted((data / "rss").iterdir())[: args.volumes]:  # the first N of the same volumes
        link = speed_root / path.name
        if not link.exists():
            link.symlink_to(path)
    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "speed": measure_speed(speed_root, args.batch, args.size, args.rounds, args.steps),
    }
    memory = subprocess.run(
        [sys.executable, __file__, "--memory-only", *(argv if argv is not None else sys.argv[1:])],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result["memory"] = json.loads(memory.stdout.strip().splitlines()[-1])
    print(json.dumps(result, indent=2))
    (args.out / f"result_{args.format.replace('.', '')}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
