"""Inference fast-path study: which eval-time optimisations of :class:`~anomalib_ea2d.EA2DModel` pay off.

Times EA2D's eval forward pass (both views, both decoders, anomaly map and score) on this machine
in five variants, from the simplest to the most involved:

- ``plain``: the modules as built, each view through the encoder on its own, NCHW layout.
- ``batched``: both views in one encoder pass, NCHW.
- ``channels_last``: weights and input in channels-last layout, views one at a time.
- ``channels_last_batched``: channels-last and both views in one encoder pass.
- ``channels_last_batched_folded``: the same with every BatchNorm folded into the convolution
  before it (:meth:`~anomalib_ea2d.EA2DModel.fuse`).

Every case (backbone, image size, batch) is timed in rounds; each round calls every variant
once, in an order that rotates from round to round, so that load drifts on a shared machine hit
all variants alike. The warm-up round is not timed; the number of rounds follows a per-case time
budget. Each call's CPU time (what it costs, even while other processes share the cores; run
with ``--threads 1`` on a loaded machine) and wall time are recorded, and the choice reads the
CPU time. The floating-point work of one call is counted with
:class:`torch.utils.flop_counter.FlopCounterMode` to report the achieved GFLOP per CPU second,
next to two large dense kernels timed in the same rounds (:func:`reference_kernels`).
Each variant's outputs are also compared with the plain variant's.

Run it as ``python -m anomalib_ea2d.pipelines.benchmark.fastpath --out DIR``; it writes ``DIR/fastpath.csv`` and
``DIR/fastpath.md``.

Example:
    >>> rows = [{"variant": "plain", "ratio_to_fastest": 1.3}, {"variant": "batched", "ratio_to_fastest": 1.04}]
    >>> kept_variant(rows)[0]
    'batched'
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from anomalib_ea2d.models.image.ea2d.anomaly_map import rotate180
from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel
from anomalib_ea2d.pipelines.benchmark.builders import randomise_eval_state


@dataclass(frozen=True)
class Variant:
    """One way of running EA2D's eval forward pass.

    Attributes:
        label: Short description for the report.
        channels_last: Weights and input in channels-last memory layout.
        batched: Both views through the encoder in one pass.
        folded: BatchNorms folded into the convolutions before them (:meth:`EA2DModel.fuse`).
    """

    label: str
    channels_last: bool
    batched: bool
    folded: bool


VARIANTS: dict[str, Variant] = {
    "plain": Variant("plain modules, views one at a time", channels_last=False, batched=False, folded=False),
    "batched": Variant("both views in one encoder pass", channels_last=False, batched=True, folded=False),
    "channels_last": Variant("channels-last only", channels_last=True, batched=False, folded=False),
    "channels_last_batched": Variant("channels-last + batched views", channels_last=True, batched=True, folded=False),
    "channels_last_batched_folded": Variant(
        "channels-last + batched views + BatchNorm folding", channels_last=True, batched=True, folded=True
    ),
}
"""The variants, simplest first (the order the choice of the kept variant reads them in)."""

GEMM_SIZE = 2048
"""Side of the square single-precision matrix product timed as a reference (BLAS: MKL in torch's wheels)."""

CONV_REFERENCE = (8, 512, 64)
"""Batch, channels and side of the channels-last 1x1 convolution timed as a reference (oneDNN, as EA2D's)."""

TOLERANCE = 1e-5
"""Largest allowed difference between any variant's outputs and the plain variant's."""


def _forward(model: EA2DModel, images: torch.Tensor, variant: Variant) -> tuple[torch.Tensor, torch.Tensor]:
    """EA2D's eval forward pass built from the model's parts, as ``variant`` runs it: (map, score)."""
    view2 = rotate180(images)
    if variant.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
        view2 = view2.contiguous(memory_format=torch.channels_last)
    if variant.batched:
        features = model.encoder(torch.cat([images, view2]))
        batch = images.shape[0]
        encoded = [[f[:batch] for f in features], [f[batch:] for f in features]]
    else:
        encoded = [model.encoder(images), model.encoder(view2)]
    decoded = [branch(e2, e3, e4) for branch, (_, e2, e3, e4) in zip(model.branches, encoded, strict=True)]
    return model.anomaly_map_generator(encoded[0][:3], decoded[0], encoded[1][:3], decoded[1], images.shape[-2:])


def build_variants(
    model: EA2DModel, variants: Sequence[str] = tuple(VARIANTS)
) -> dict[str, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
    """One callable per variant, each on its own eval copy of ``model`` (converted as the variant needs)."""
    calls = {}
    for name in variants:
        variant = VARIANTS[name]
        copy_ = model.fuse() if variant.folded else copy.deepcopy(model).eval()
        if variant.channels_last:
            copy_ = copy_.to(memory_format=torch.channels_last)

        def call(images: torch.Tensor, copy_: EA2DModel = copy_, variant: Variant = variant) -> tuple:
            return _forward(copy_, images, variant)

        calls[name] = call
    return calls


def count_flops(function: Callable[[], object]) -> int:
    """Floating-point operations of one call (a multiply-add counts two), as FlopCounterMode counts them."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        function()
    return counter.get_total_flops()


def time_interleaved(
    functions: dict[str, Callable[[], object]], budget_s: float, min_rounds: int, max_rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """``(wall, CPU)`` seconds of each call of each function, in rounds calling each once in a rotating order.

    Rounds run until ``budget_s`` of wall time is spent, at least ``min_rounds`` and at most
    ``max_rounds`` of them. The CPU time (of the whole process) is what a call costs even when
    other processes share the cores; the wall time is what a caller waits.
    """
    names = list(functions)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    start = time.perf_counter()
    rounds = 0
    with torch.inference_mode():
        while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - start < budget_s):
            shift = rounds % len(names)
            for name in names[shift:] + names[:shift]:
                wall, cpu = time.perf_counter(), time.process_time()
                functions[name]()
                samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
            rounds += 1
    return samples


def reference_kernels() -> dict[str, tuple[Callable[[], object], int]]:
    """Two large single-precision kernels and their FLOPs: what this machine reaches on dense arithmetic.

    ``sgemm`` is a square matrix product (torch's BLAS); ``conv1x1`` a channels-last 1x1
    convolution, which runs on the same library (oneDNN) and instruction set as EA2D's convolutions.
    """
    gemm_a, gemm_b = torch.randn(GEMM_SIZE, GEMM_SIZE), torch.randn(GEMM_SIZE, GEMM_SIZE)
    batch, channels, side = CONV_REFERENCE
    conv = nn.Conv2d(channels, channels, kernel_size=1, bias=False).eval().to(memory_format=torch.channels_last)
    maps = torch.randn(batch, channels, side, side).contiguous(memory_format=torch.channels_last)
    return {
        "sgemm": (lambda: torch.mm(gemm_a, gemm_b), 2 * GEMM_SIZE**3),
        "conv1x1": (lambda: conv(maps), 2 * batch * channels * channels * side * side),
    }


def run_case(
    backbone: str,
    image_size: int,
    batch: int,
    budget_s: float = 20.0,
    min_rounds: int = 2,
    max_rounds: int = 25,
    seed: int = 0,
) -> list[dict[str, object]]:
    """Time every variant (and the reference kernels) for one case; one row per variant or kernel.

    A first, untimed round computes every variant's outputs (the warm-up, and the comparison with
    the plain variant). The FLOPs are counted at batch 1 and scaled by the batch (every operation
    of EA2D works per image).
    """
    torch.manual_seed(seed)
    model = randomise_eval_state(EA2DModel(backbone=backbone, pre_trained=False), seed).eval()
    images = torch.randn(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(seed))
    calls = build_variants(model)
    references = reference_kernels()
    with torch.inference_mode():
        outputs = {name: call(images) for name, call in calls.items()}
        for reference, _ in references.values():
            reference()
    flops = batch * count_flops(lambda: calls["plain"](images[:1]))
    functions: dict[str, Callable[[], object]] = {
        name: (lambda call=call: call(images)) for name, call in calls.items()
    }
    functions.update({name: reference for name, (reference, _) in references.items()})
    samples = time_interleaved(functions, budget_s, min_rounds, max_rounds)
    wall = {name: statistics.median(w for w, _ in times) for name, times in samples.items()}
    cpu = {name: statistics.median(c for _, c in times) for name, times in samples.items()}
    fastest = min(cpu[name] for name in calls)
    plain_map, plain_score = outputs["plain"]
    rows = []
    for name, times in samples.items():
        work = references[name][1] if name in references else flops
        difference = float("nan")
        if name in outputs:
            anomaly_map, score = outputs[name]
            difference = max(float((anomaly_map - plain_map).abs().max()), float((score - plain_score).abs().max()))
        rows.append(
            {
                "backbone": backbone,
                "image_size": image_size,
                "batch": batch,
                "threads": torch.get_num_threads(),
                "variant": name,
                "rounds": len(times),
                "cpu_ms": 1e3 * cpu[name],
                "cpu_min_ms": 1e3 * min(c for _, c in times),
                "cpu_max_ms": 1e3 * max(c for _, c in times),
                "wall_ms": 1e3 * wall[name],
                "ratio_to_fastest": cpu[name] / fastest if name in calls else float("nan"),
                "gflop_per_call": work / 1e9,
                "gflop_per_cpu_s": work / 1e9 / cpu[name],
                "max_abs_diff_vs_plain": difference,
            }
        )
    return rows


def kept_variant(rows: Sequence[dict[str, object]], tolerance: float = 0.05) -> tuple[str, dict[str, float]]:
    """The simplest variant whose geometric-mean ratio to each case's fastest is within ``tolerance``.

    Returns:
        Its name and, per variant, the geometric mean of ``median / fastest median`` over the cases.
    """
    ratios: dict[str, list[float]] = {}
    for row in rows:
        if row["variant"] in VARIANTS:
            ratios.setdefault(str(row["variant"]), []).append(float(row["ratio_to_fastest"]))
    means = {name: math.exp(statistics.fmean(math.log(r) for r in values)) for name, values in ratios.items()}
    kept = next(name for name in VARIANTS if name in means and means[name] <= 1.0 + tolerance)
    return kept, means


def _case_key(row: dict[str, object]) -> tuple:
    return (row["backbone"], row["image_size"], row["batch"])


def markdown_table(rows: Sequence[dict[str, object]]) -> str:
    """One line per case: each variant's median CPU ms (and ratio to the case's fastest), FLOP rates."""
    names = [name for name in VARIANTS if any(row["variant"] == name for row in rows)]
    header = [
        *("backbone", "px", "batch", "rounds", *names, "GFLOP/call"),
        *("GFLOP/CPU-s (fastest)", "conv1x1 GFLOP/CPU-s", "sgemm GFLOP/CPU-s"),
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    cases: dict[tuple, dict[str, dict[str, object]]] = {}
    for row in rows:
        cases.setdefault(_case_key(row), {})[str(row["variant"])] = row
    for (backbone, size, batch), by_variant in cases.items():
        variants = [by_variant[name] for name in names]
        fastest = min(variants, key=lambda row: float(row["cpu_ms"]))
        cells = [f"{float(row['cpu_ms']):.0f} ({float(row['ratio_to_fastest']):.2f})" for row in variants]
        rounds = min(int(row["rounds"]) for row in variants)
        rates = [
            f"{float(fastest['gflop_per_call']):.1f}",
            f"{float(fastest['gflop_per_cpu_s']):.0f}",
            f"{float(by_variant['conv1x1']['gflop_per_cpu_s']):.0f}",
            f"{float(by_variant['sgemm']['gflop_per_cpu_s']):.0f}",
        ]
        lines.append(f"| {backbone} | {size} | {batch} | {rounds} | " + " | ".join(cells + rates) + " |")
    return "\n".join(lines)


def write_report(rows: Sequence[dict[str, object]], out: Path, command: str) -> tuple[Path, Path]:
    """Write ``fastpath.csv`` (one row per case and variant) and ``fastpath.md`` (table and choice)."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "fastpath.csv", out / "fastpath.md"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    kept, means = kept_variant(rows)
    worst = max(float(row["max_abs_diff_vs_plain"]) for row in rows if row["variant"] in VARIANTS)
    lines = [
        "# EA2D inference fast path",
        "",
        f"`{command}`; torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or 'cpu'}.",
        "Median CPU ms per call of the eval forward pass (ratio to the case's fastest variant); rounds alternate",
        "the variants, warm-up excluded; wall times are in the CSV. GFLOP counted by FlopCounterMode.",
        "",
        markdown_table(rows),
        "",
        "| variant | description | geometric-mean ratio to fastest |",
        "| --- | --- | --- |",
        *(f"| {name} | {VARIANTS[name].label} | {means[name]:.3f} |" for name in VARIANTS if name in means),
        "",
        f"Simplest variant within 5 % of the fastest (geometric mean over cases): **{kept}**.",
        f"Largest output difference of any variant from the plain one: {worst:.1e} (tolerance {TOLERANCE:.0e}).",
        "",
    ]
    md_path.write_text("\n".join(lines))
    return csv_path, md_path


def build_parser() -> argparse.ArgumentParser:
    """Command line of the study."""
    parser = argparse.ArgumentParser(
        prog="python -m anomalib_ea2d.pipelines.benchmark.fastpath", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for fastpath.csv and fastpath.md")
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--budget-s", type=float, default=20.0, help="timed seconds per case (rounds stop after it)")
    parser.add_argument("--min-rounds", type=int, default=2)
    parser.add_argument("--max-rounds", type=int, default=25)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study over every backbone, size and batch and write the report."""
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = (
        "python -m anomalib_ea2d.pipelines.benchmark.fastpath " + " ".join(sys.argv[1:] if argv is None else argv)
    ).strip()
    rows: list[dict[str, object]] = []
    # Cheapest cases first; the report is rewritten after every case, so a stopped run keeps its results.
    cases = sorted(
        ((backbone, size, batch) for backbone in args.backbones for size in args.sizes for batch in args.batches),
        key=lambda case: (case[1] ** 2 * case[2], case[0]),
    )
    for backbone, size, batch in cases:
        case = run_case(backbone, size, batch, args.budget_s, args.min_rounds, args.max_rounds)
        rows += case
        summary = ", ".join(
            f"{row['variant']} {float(row['cpu_ms']):.0f}/{float(row['wall_ms']):.0f} ms" for row in case
        )
        print(f"{backbone} {size}px batch {batch} ({case[0]['rounds']} rounds, CPU/wall): {summary}", flush=True)
        csv_path, md_path = write_report(rows, args.out, command)
    print(f"wrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
