"""Command line of ``python -m anomalib_ea2d.pipelines.benchmark``: one sub-command per study, ``all`` for CPU ones.

Every run writes ``config.json`` (the settings used) and ``report.md`` (machine, command, the
studies' tables) into ``--output``, next to each study's own files. ``--print-config`` prints those
settings instead and runs nothing (no ``--output`` needed): a quick check of a preset and overrides.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from anomalib_ea2d.pipelines.benchmark.config import BACKENDS, ENCODER_ARMS, MODEL_NAMES, load_preset

logger = logging.getLogger("anomalib_ea2d.pipelines.benchmark")

STUDIES: tuple[str, ...] = ("compare", "goals", "scaling", "ablation", "encoder", "gpu")
"""Sub-commands, one per study module of this package (its ``run_<study>`` function)."""

ALL_STUDIES: tuple[str, ...] = ("compare", "goals", "scaling", "ablation")
"""The studies ``all`` runs: the shorter CPU ones (``encoder`` takes hours; ``gpu`` needs a CUDA device)."""


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``python -m anomalib_ea2d.pipelines.benchmark``.

    Example:
        >>> build_parser().parse_args(["scaling", "--output", "out"]).preset
        'full'
    """
    parser = argparse.ArgumentParser(
        prog="python -m anomalib_ea2d.pipelines.benchmark",
        description="Benchmark EA2D against anomalib's PatchCore, Reverse Distillation and UniNet "
        "on the synthetic brain set.",
    )
    parser.add_argument(
        "study", choices=(*STUDIES, "all"), help="Study to run ('all': every CPU study, i.e. all but gpu)."
    )
    parser.add_argument(
        "--output", type=Path, help="Folder for CSV, JSON, markdown and plot files (required unless --print-config)."
    )
    parser.add_argument(
        "--preset",
        default="full",
        help="Sizes: 'full' (default) or 'smoke' (configs/benchmark/NAME.yaml), or the path of a preset YAML file.",
    )
    parser.add_argument("--data-root", type=Path, help="Folder of the generated synthetic set (default: OUTPUT/data).")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, help="compare: models (default: all).")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, help="compare: back-ends (default: all).")
    parser.add_argument("--threads", type=int, help="CPU threads (default: the preset's).")
    parser.add_argument("--seeds", nargs="+", type=int, help="compare, ablation and encoder: seeds.")
    parser.add_argument("--arms", nargs="+", choices=ENCODER_ARMS, help="encoder: arms (default: the preset's).")
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        help="encoder: steps of the pretraining phase (default: the preset's, else the demo's).",
    )
    parser.add_argument(
        "--accelerator",
        choices=("cpu", "gpu"),
        help="encoder: Lightning accelerator of every run (default: the preset's, cpu).",
    )
    parser.add_argument("--no-isolate", action="store_true", help="compare: run every model in this process.")
    parser.add_argument(
        "--print-config", action="store_true", help="Print the studies' settings as JSON and exit without running."
    )
    return parser


def _run_study(study: str, config: object, output: Path, isolate: bool) -> None:
    module = importlib.import_module(f"anomalib_ea2d.pipelines.benchmark.{study}")
    run = getattr(module, f"run_{study}")
    if study == "compare":
        run(config, output, isolate=isolate)
    else:
        run(config, output)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the requested studies; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.output is None and not args.print_config:
        parser.error("the following arguments are required: --output")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logger.setLevel(logging.INFO)
    try:
        configs = load_preset(args.preset, args.data_root)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))  # exits with status 2
    overrides = {
        "compare": {"models": args.models, "backends": args.backends, "seeds": args.seeds},
        "ablation": {"seeds": args.seeds},
        "encoder": {"seeds": args.seeds, "arms": args.arms},
    }
    for study, values in overrides.items():
        given = {key: tuple(value) for key, value in values.items() if value}
        configs[study] = dataclasses.replace(configs[study], **given)
    if args.pretrain_steps is not None:
        if args.pretrain_steps < 0:
            parser.error(f"--pretrain-steps {args.pretrain_steps} is not valid; pass 0 (no pretraining) or more steps.")
        configs["encoder"] = dataclasses.replace(configs["encoder"], pretrain_steps=args.pretrain_steps)
    if args.accelerator is not None:
        configs["encoder"] = dataclasses.replace(configs["encoder"], accelerator=args.accelerator)
    if args.threads:
        for study in configs:
            if hasattr(configs[study], "threads"):
                configs[study] = dataclasses.replace(configs[study], threads=args.threads)
    studies = ALL_STUDIES if args.study == "all" else (args.study,)
    config_dump = {study: dataclasses.asdict(configs[study]) for study in studies}
    if args.print_config:
        print(json.dumps(config_dump, indent=2, default=str))
        return 0
    output: Path = args.output
    output.mkdir(parents=True, exist_ok=True)
    from anomalib_ea2d.pipelines.benchmark.measure import machine_info  # noqa: PLC0415 - imports torch
    from anomalib_ea2d.pipelines.benchmark.report import write_report  # noqa: PLC0415

    info = machine_info(configs["compare"].threads)
    seconds = {}
    for study in studies:
        start = time.perf_counter()
        _run_study(study, configs[study], output, isolate=not args.no_isolate)
        seconds[study] = time.perf_counter() - start
        logger.info("%s done in %.0f s", study, seconds[study])
    info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    (output / "config.json").write_text(json.dumps(config_dump, indent=2, default=str), encoding="utf-8")
    command = "python -m anomalib_ea2d.pipelines.benchmark " + " ".join(sys.argv[1:] if argv is None else argv)
    report = write_report(output, info, [command], seconds)
    logger.info("report: %s", report)
    return 0


__all__ = ["ALL_STUDIES", "STUDIES", "build_parser", "main"]
