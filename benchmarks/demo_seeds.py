r"""Run the CPU demo with several seeds and tabulate its test metrics (per seed, mean +- sd).

Each seed runs ``python -m anomalib_ea2d.demo`` on a copy of the demo config whose
``seed_everything`` is that seed (written next to the config, so its relative ``data:`` path still
resolves, and removed afterwards), in its own process (as ``scripts/demo.sh`` runs it);
``--parallel N`` runs N seeds side by side with ``cpu_count / N`` threads each. Writes
``OUTPUT/seed<N>/`` (the demo's outputs) and ``OUTPUT/demo_seeds.md``::

    .venv/bin/python benchmarks/demo_seeds.py --seeds 0 1 2 --parallel 1 --output results/demo_seeds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anomalib_ea2d.pipelines.benchmark.report import Table, fmt, fmt_mean_std, mean_std  # noqa: E402

DEMO_COMMAND = (sys.executable, "-W", "ignore::FutureWarning", "-m", "anomalib_ea2d.demo")
"""The demo as ``scripts/demo.sh`` runs it (timm's and anomalib's import-time deprecation warnings hidden)."""

METRICS = (
    "image_AUROC",
    "image_AveragePrecision",
    "image_SensitivityAtSpecificity",
    "image_Sensitivity",
    "image_Specificity",
    "pixel_AUROC",
    "pixel_AveragePrecision",
    "pixel_PRO",
    "pixel_Dice",
    "pixel_BestDice",
    "train_seconds",
)


def run_seed(config: Path, seed: int, output: Path, threads: int) -> dict[str, float]:
    """Run the demo once with ``seed``; return its metrics and the wall time."""
    copy = config.with_name(f".{config.stem}_seed{seed}.yaml")
    settings = yaml.safe_load(config.read_text())
    settings["seed_everything"] = seed
    copy.write_text(yaml.safe_dump(settings, sort_keys=False))
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    target = output / f"seed{seed}"
    started = time.perf_counter()
    try:
        with (output / f"seed{seed}.log").open("w") as log:
            subprocess.run(
                [*DEMO_COMMAND, "--config", str(copy), "--output", str(target)],
                check=True,
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    finally:
        copy.unlink(missing_ok=True)
    metrics = json.loads((target / "metrics.json").read_text())
    return {"seed": seed, "wall_seconds": time.perf_counter() - started, **metrics}


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "synthetic_brain.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--parallel", type=int, default=1, help="seeds run side by side")
    parser.add_argument("--output", type=Path, default=Path("results/demo_seeds"))
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // args.parallel)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        runs = list(pool.map(lambda seed: run_seed(args.config, seed, args.output, threads), args.seeds))
    summary = mean_std([{**run, "all": "all"} for run in runs], ["all"], [*METRICS, "wall_seconds"])[0]
    table = Table(
        header=["metric", *(f"seed {run['seed']}" for run in runs), "mean +- sd"],
        caption=f"`{args.config.name}`, {args.parallel} run(s) side by side, {threads} thread(s) each.",
    )
    for key in (*METRICS, "wall_seconds"):
        digits = 1 if key.endswith("seconds") else 3
        table.rows.append([key, *(fmt(float(run[key]), digits) for run in runs), fmt_mean_std(summary, key, digits)])
    text = table.markdown()
    (args.output / "demo_seeds.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
