"""One-command demo: EA2D on the synthetic brain-MRI set, from data generation to an OpenVINO model.

``python -m anomalib_ea2d.demo`` reads ``configs/synthetic_brain.yaml`` and the data config it names
(the single source of the demo's settings; an installed wheel carries both, see
:mod:`anomalib_ea2d.config_files`) with jsonargparse, which builds the model and the datamodule
as ``anomalib train --config`` does (:func:`config_parser`), generates the synthetic set if needed,
trains EA2D, tests the final model with anomalib's metrics, exports it to OpenVINO and writes,
under ``--output`` (default ``results/demo``):

- ``metrics.json`` and ``metrics.csv``: the configured test metrics (the demo config: image AUROC,
  AP, sensitivity/specificity at the operating point and at 95 % specificity; pixel AUROC, AP,
  PRO, Dice, best Dice), the operating point's thresholds, and timings;
- ``image_scores.csv``: every test slice's raw score (the image AUROC is computed on these),
  normalised score, decision at the operating point and label
  (:class:`~anomalib_ea2d.callbacks.image_scores.ImageScores`);
- ``report.html``: the run report (settings, ROC/PR curves, score histograms with the operating
  threshold, the worst false positives and negatives; :class:`~anomalib_ea2d.visualization.report.RunReport`),
  one self-contained file;
- ``heatmaps/``: anomalib's visualisations of a few normal and lesion test slices;
- ``openvino/``: the exported model (``model.xml``/``model.bin``).

Where ImageNet weights can be reached (timm's cache or a download) the demo uses them; otherwise the
encoder starts from random weights (with the config's ``scratch_encoder_lr`` if it sets one), and one log
line says so.
The console shows the steps, the metrics table and where the outputs are; the export's ONNX
chatter is silenced (:func:`~anomalib_ea2d.utils.quiet.quiet_export`).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from anomalib.data import AnomalibDataModule
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from anomalib.models import AnomalibModule
from jsonargparse import ArgumentError, ArgumentParser, Namespace
from lightning.pytorch import Callback, seed_everything

from anomalib_ea2d.callbacks.encoder_pretraining import EncoderPretraining
from anomalib_ea2d.callbacks.image_scores import SCORES_FILE
from anomalib_ea2d.config_files import config_dir, find_config
from anomalib_ea2d.models.components.backbone import OfflineWeightsError
from anomalib_ea2d.utils.quiet import quiet_export
from anomalib_ea2d.visualization.report import RunReport

logger = logging.getLogger("anomalib_ea2d.demo")

DEFAULT_CONFIG = config_dir() / "synthetic_brain.yaml"
"""The demo's config: the bundled ``configs/synthetic_brain.yaml`` (in the wheel, or in a source checkout)."""
HEATMAPS_PER_CLASS = 3


def config_parser() -> ArgumentParser:
    """The parser of a demo config: ``seed_everything``, ``trainer``, ``model`` and ``data``, as in ``anomalib train``.

    ``model`` and ``data`` are subclass arguments of anomalib's ``AnomalibModule`` and
    ``AnomalibDataModule``, resolved and built as anomalib's CLI builds them (nested class paths such
    as a post-processor included); ``trainer`` holds ``Engine``/``Trainer`` arguments. If the model
    asks for ImageNet weights that cannot be reached, it is built from random weights instead, with
    one log line saying so.
    """
    parser = ArgumentParser(description=__doc__.splitlines()[0], exit_on_error=False)
    parser.add_argument("--seed_everything", type=int, default=42)
    parser.add_argument("--trainer", type=dict[str, Any], default={})
    parser.add_subclass_arguments(AnomalibModule, "model", required=True, fail_untyped=False)
    parser.add_subclass_arguments(AnomalibDataModule, "data", required=True, fail_untyped=False)
    parser.add_instantiator(_from_random_weights_if_offline, AnomalibModule, subclasses=True)
    return parser


def _from_random_weights_if_offline(class_type: type, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
    """Build the model; if ImageNet weights are asked for but unreachable, build it from random weights."""
    try:
        return class_type(*args, **kwargs)
    except OfflineWeightsError as error:
        if not kwargs.get("pre_trained", True):
            raise
        reason = str(error).split(";", maxsplit=1)[0]
        scratch_lr = kwargs.get("scratch_encoder_lr")
        recipe = f"from-scratch recipe, encoder lr {scratch_lr:g}" if scratch_lr is not None else "paper recipe"
        logger.warning("%s; the demo trains the encoder from random weights (%s).", reason, recipe)
        return class_type(*args, **{**kwargs, "pre_trained": False})


def trainer_callbacks(entries: Any) -> list[Callback]:  # noqa: ANN401
    """The config's ``trainer.callbacks`` (``class_path``/``init_args`` entries), built as anomalib's CLI builds them.

    Example:
        >>> entry = {"class_path": "anomalib_ea2d.callbacks.EncoderPretraining", "init_args": {"steps": 5}}
        >>> [callback.steps for callback in trainer_callbacks([entry])]
        [5]
    """
    if not entries:
        return []
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--callbacks", type=list[Callback])
    entries = entries if isinstance(entries, list) else [entries]
    return list(parser.instantiate_classes(parser.parse_object({"callbacks": entries})).callbacks)


def _encoder_start(model: AnomalibModule, callbacks: list[Callback]) -> str:
    """How the encoder starts, for the console: ImageNet, a weights file, in-domain pretraining, or random."""
    if model.hparams.get("backbone_weights"):
        return f"encoder from {model.hparams.backbone_weights}"
    if model.hparams.pre_trained:
        return "ImageNet encoder start"
    pretraining = [c for c in callbacks if isinstance(c, EncoderPretraining) and c.steps > 0]
    if pretraining:
        phase = pretraining[0]
        fixed = ", then kept fixed" if phase.freeze_encoder else ""
        return f"encoder learned in-domain first: {phase.steps} pretraining steps on the training slices{fixed}"
    return "random encoder start"


def _check_section_files(path: Path) -> None:
    """Raise ``FileNotFoundError`` naming a section file (``data: data/x.yaml``) that does not exist.

    Section files are found relative to the config's folder, as anomalib's CLI finds them.
    """
    config = yaml.safe_load(path.read_text()) or {}
    for key, value in config.items():
        if isinstance(value, str) and value.endswith((".yaml", ".yml")):
            section = path.parent / value
            if not section.is_file():
                msg = (
                    f"Config {path} reads its {key!r} section from {section}, which does not exist; "
                    "restore that file or write the section into the config."
                )
                raise FileNotFoundError(msg)


def parse_config(path: Path) -> Namespace:
    """The demo config at ``path`` as :func:`config_parser` reads it (only the values it sets).

    Raises:
        FileNotFoundError: A section file the config names does not exist.
    """
    _check_section_files(path)
    return config_parser().parse_path(path, defaults=False)


def load_config(path: Path) -> dict[str, Any]:
    """The YAML config at ``path`` as one plain dictionary, its section files (``data: data/x.yaml``) read in.

    Raises:
        FileNotFoundError: A section file the config names does not exist.

    Example:
        >>> load_config(DEFAULT_CONFIG)["data"]["class_path"]
        'anomalib_ea2d.data.SyntheticBrainMRI'
    """
    return yaml.safe_load(config_parser().dump(parse_config(path)))


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


def _step(number: int, text: str) -> None:
    print(f"[{number}/4] {text}", flush=True)


def _print_table(metrics: dict[str, Any]) -> None:
    """Print the test metrics as a two-column table."""
    rows = [(key, value) for key, value in metrics.items() if key.startswith(("image_", "pixel_"))]
    width = max((len(key) for key, _ in rows), default=10)
    print(f"  {'metric':<{width}}  value")
    print(f"  {'-' * width}  ------")
    for key, value in rows:
        print(f"  {key:<{width}}  {value:.4f}")


def run(config_path: Path, output: Path) -> dict[str, Any]:
    """Run the demo and return the metrics written to ``output/metrics.json``."""
    config = parse_config(config_path)
    seed_everything(config.get("seed_everything", 42), workers=True)
    output.mkdir(parents=True, exist_ok=True)
    _step(1, f"data: synthetic brain-MRI set under {output / 'data'} (generated on first use)")
    config["data.init_args.root"] = output / "data"
    built = config_parser().instantiate_classes(config)
    datamodule, model = built.data, built.model
    # The recipe's length given to the trainer up front: same 300 steps, without Lightning's "max_epochs
    # was not set" warning on the demo's console.
    trainer_args = {"max_steps": model.hparams.max_steps, **(config.get("trainer") or {})}
    callbacks = trainer_callbacks(trainer_args.pop("callbacks", None))
    report = RunReport(output_dir=output)
    engine = Engine(default_root_dir=output / "results", logger=False, callbacks=[*callbacks, report], **trainer_args)

    _step(2, f"training EA2D ({_encoder_start(model, callbacks)})")
    started = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule)
    train_seconds = time.perf_counter() - started
    _step(3, "testing on the test half (thresholds were calibrated on the validation half)")
    started = time.perf_counter()
    (test_metrics,) = engine.test(model=model, datamodule=datamodule)
    test_seconds = time.perf_counter() - started
    shutil.copyfile(Path(engine.trainer.default_root_dir) / SCORES_FILE, output / SCORES_FILE)
    _step(4, "exporting to OpenVINO")
    with quiet_export():
        exported = engine.export(model=model, export_type=ExportType.OPENVINO, export_root=output / "openvino")

    post = model.post_processor
    metrics = {
        **{key: float(value) for key, value in test_metrics.items()},
        "image_threshold": float(post.image_threshold),
        "pixel_threshold": float(post.pixel_threshold),
        "train_seconds": round(train_seconds, 1),
        "train_steps": int(engine.trainer.global_step),
        "test_seconds": round(test_seconds, 1),
        "pre_trained_encoder": bool(model.hparams.pre_trained),
        "encoder_pretraining_steps": sum(len(c.losses) for c in callbacks if isinstance(c, EncoderPretraining)),
        "calibration_images": len(getattr(datamodule, "calibration_data", None) or []),
        "openvino_model": str(exported),
    }
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    with (output / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", "value"])
        writer.writerows(metrics.items())
    heatmaps = _collect_heatmaps(output / "results", output / "heatmaps")
    print(f"\nEA2D demo on the synthetic brain-MRI set (synthetic lesions; see docs/data.md), {config_path.name}")
    _print_table(metrics)
    print(f"  trained {metrics['train_steps']} steps in {train_seconds:.0f} s; tested in {test_seconds:.0f} s")
    if metrics["calibration_images"]:
        held_out = metrics["calibration_images"]
        print(f"  map statistics fitted on {held_out} normal training slices held out of training")
    print("Outputs:")
    print(f"  metrics    {output / 'metrics.json'}, {output / 'metrics.csv'}")
    print(f"  scores     {output / SCORES_FILE} (raw score, normalised score, decision, label per slice)")
    print(f"  report     {report.path} (curves, histograms, missed and wrongly flagged slices)")
    print(f"  heat maps  {output / 'heatmaps'} ({len(heatmaps)} images)")
    print(f"  OpenVINO   {exported}")
    return metrics


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="demo config (anomalib style): a YAML file, or the name of a bundled config (default: %(default)s)",
    )
    parser.add_argument("--output", type=Path, default=Path("results/demo"), help="where to write the outputs")
    args = parser.parse_args(argv)
    try:
        config_path = find_config(args.config)
        parse_config(config_path)  # a missing section file or a wrong setting is reported here, before any work
    except (FileNotFoundError, ArgumentError) as error:
        parser.error(str(error))  # exits with status 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(config_path, args.output)


if __name__ == "__main__":
    main()
