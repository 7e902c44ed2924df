"""One-command demo: EA2D on the synthetic brain-MRI set, from data generation to an OpenVINO model.

``python -m anomalib_ea2d.demo`` reads ``configs/synthetic_brain.yaml`` and the data config it names
(the single source of the demo's settings), generates the synthetic set if needed, trains EA2D, tests
the final model with anomalib's metrics, exports it to OpenVINO and writes, under ``--output``
(default ``results/demo``):

- ``metrics.json`` and ``metrics.csv``: image AUROC/F1, pixel AUROC/PRO, and timings;
- ``heatmaps/``: anomalib's visualisations of a few normal and lesion test slices;
- ``openvino/``: the exported model (``model.xml``/``model.bin``).

Without reachable ImageNet weights the encoder starts from random weights, and the demo says so.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from lightning.pytorch import seed_everything

logger = logging.getLogger("anomalib_ea2d.demo")

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "synthetic_brain.yaml"
HEATMAPS_PER_CLASS = 3


def _instantiate(spec: dict[str, Any], **overrides: Any) -> Any:  # noqa: ANN401
    """Build ``class_path(**init_args, **overrides)`` from a config section."""
    module_name, _, class_name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**{**spec.get("init_args", {}), **overrides})


def load_config(path: Path) -> dict[str, Any]:
    """The YAML config at ``path``, with each section given as a file (``data: data/x.yaml``) read in.

    Section files are found relative to the config's folder, as anomalib's CLI finds them.

    Example:
        >>> load_config(DEFAULT_CONFIG)["data"]["class_path"]
        'anomalib_ea2d.data.SyntheticBrainMRI'
    """
    config = yaml.safe_load(path.read_text())
    for key, value in config.items():
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            config[key] = yaml.safe_load((path.parent / value).read_text())
    return config


def _build_model(spec: dict[str, Any]) -> Any:  # noqa: ANN401
    """The configured EA2D; if ImageNet weights are asked for but unreachable, start from random weights."""
    try:
        return _instantiate(spec)
    except RuntimeError as error:
        if not spec.get("init_args", {}).get("pre_trained", True):
            raise
        logger.warning("ImageNet weights are not reachable (%s); the demo trains the encoder from scratch.", error)
        return _instantiate(spec, pre_trained=False)


def _collect_heatmaps(results_dir: Path, target: Path) -> list[Path]:
    """Copy a few of anomalib's test visualisations of each class into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    images = sorted(p for p in results_dir.rglob("images/**/*.png") if p.is_file())
    normal_folders = {"good", "normal"}  # anomalib's visualiser names folders after the test folders
    for label, is_normal in (("normal", True), ("abnormal", False)):
        chosen = [p for p in images if (p.parent.name in normal_folders) == is_normal][:HEATMAPS_PER_CLASS]
        for path in chosen:
            destination = target / f"{label}_{path.name}"
            shutil.copyfile(path, destination)
            copied.append(destination)
    return copied


def run(config_path: Path, output: Path) -> dict[str, Any]:
    """Run the demo and return the metrics written to ``output/metrics.json``."""
    config = load_config(config_path)
    seed_everything(config.get("seed_everything", 42), workers=True)
    output.mkdir(parents=True, exist_ok=True)
    datamodule = _instantiate(config["data"], root=output / "data")
    model = _build_model(config["model"])
    engine = Engine(default_root_dir=output / "results", logger=False, **config.get("trainer", {}))

    started = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    (test_metrics,) = engine.test(model=model, datamodule=datamodule)
    test_seconds = time.perf_counter() - started
    exported = engine.export(model=model, export_type=ExportType.OPENVINO, export_root=output / "openvino")

    metrics = {
        **{key: float(value) for key, value in test_metrics.items()},
        "train_seconds": round(train_seconds, 1),
        "train_steps": int(engine.trainer.global_step),
        "test_seconds": round(test_seconds, 1),
        "pre_trained_encoder": bool(model.hparams.pre_trained),
        "openvino_model": str(exported),
    }
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    with (output / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "value"])
        writer.writerows(metrics.items())
    heatmaps = _collect_heatmaps(output / "results", output / "heatmaps")
    print(f"\nEA2D demo on the synthetic brain-MRI set (synthetic lesions; see docs/data.md), {config_path.name}")
    for key in ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_PRO"):
        if key in metrics:
            print(f"  {key:<14} {metrics[key]:.4f}")
    print(f"  trained {metrics['train_steps']} steps in {train_seconds:.0f} s; tested in {test_seconds:.0f} s")
    print(
        f"Outputs: {output / 'metrics.json'}, {output / 'metrics.csv'}, "
        f"{len(heatmaps)} heat maps in {output / 'heatmaps'}, OpenVINO model {exported}"
    )
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="demo config (anomalib style)")
    parser.add_argument("--output", type=Path, default=Path("results/demo"), help="where to write the outputs")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"config {args.config} not found; pass --config configs/synthetic_brain.yaml from the repository")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(args.config, args.output)


if __name__ == "__main__":
    main()
