"""The ``encoder`` study: what an in-domain encoder buys where no ImageNet weights can be had.

Per seed, on the slice demo's data set and with its EA2D settings (``configs/synthetic_brain.yaml``):

``ea2d_random``
    EA2D from a random encoder (what the demo did before).
``ea2d_in_domain``
    EA2D after :class:`~anomalib_ea2d.callbacks.EncoderPretraining` (the pretraining phase runs
    inside ``Engine.fit`` and saves the encoder), with the phase's settings in the demo config
    (``steps``, ``freeze_encoder``, ...).
``ea2d_in_domain_calibrated``
    The same, with ``calibration_split_ratio`` of the normal training slices held out of both phases
    and used to fit the map statistics (:mod:`anomalib_ea2d.data.datamodules.calibration`).
``ea2d_in_domain_simsiam``
    The pretraining phase with the contrastive objective (``objective="simsiam"``) in place of the
    demo's synthetic-anomaly segmentation, the same number of steps.
``reverse_distillation_*``, ``patchcore_*``
    anomalib's models at the same input size and backbone, from a random encoder and from the very
    encoder EA2D learned (its weights file loaded into their feature extractor).
``zscore``
    The non-learned floor: per-position z-score of the blurred intensity against the normal
    training slices, inside the brain, the image score the mean of its top 1 %.

Every model is scored on both halves of the generated test slices: the validation half (the only
one used to choose settings) and the test half. All ranking metrics are computed on raw scores.
Writes ``encoder.csv`` (one row per run and half) and ``encoder.md`` (mean +- sample std per arm),
with the cost of each phase in minutes on this machine.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from anomalib.engine import Engine
from jsonargparse import Namespace
from lightning.pytorch import seed_everything
from torch import nn
from torchmetrics.functional.classification import binary_auroc, binary_sensitivity_at_specificity

from anomalib_ea2d.callbacks.encoder_pretraining import EncoderPretraining, find_encoder
from anomalib_ea2d.callbacks.roi import RegionOfInterest
from anomalib_ea2d.demo import DEFAULT_CONFIG, config_parser, parse_config
from anomalib_ea2d.pipelines.benchmark.builders import build_model, quiet_lightning
from anomalib_ea2d.pipelines.benchmark.config import ENCODER_ARMS, EncoderConfig
from anomalib_ea2d.pipelines.benchmark.measure import set_threads
from anomalib_ea2d.pipelines.benchmark.metrics import shared_evaluator
from anomalib_ea2d.pipelines.benchmark.report import Table, fmt, mean_std, write_study

logger = logging.getLogger(__name__)

ENCODER_KEYS: tuple[str, ...] = ("image_AUROC", "image_SensitivityAtSpecificity", "pixel_AUROC")
"""The metrics the study reports for both halves."""

HALVES = ("validation", "test")
ARMS = ENCODER_ARMS
"""The study's arms, in report order."""


def _stack(loader: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # noqa: ANN401
    """Images, masks and labels of a data loader, concatenated."""
    images, masks, labels = [], [], []
    for batch in loader:
        images.append(batch.image)
        masks.append(batch.gt_mask.float() if batch.gt_mask is not None else torch.zeros_like(batch.image[:, 0]))
        labels.append(batch.gt_label)
    return torch.cat(images), torch.cat(masks), torch.cat(labels)


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Grey images ``[B, 1, H, W]`` blurred by a Gaussian of ``sigma`` pixels."""
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    blurred = F.conv2d(images, kernel.view(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(blurred, kernel.view(1, 1, -1, 1), padding=(radius, 0))


def zscore_scores(
    train: torch.Tensor, images: torch.Tensor, sigma: float = 1.5, threshold: float = 0.05, top: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position z-score maps of ``images`` against the ``train`` images, and their top-``top`` mean scores.

    Example:
        >>> maps, scores = zscore_scores(torch.rand(8, 3, 32, 32), torch.rand(2, 3, 32, 32))
        >>> maps.shape, scores.shape
        (torch.Size([2, 32, 32]), torch.Size([2]))
    """
    reference = _blur(train.mean(dim=1, keepdim=True), sigma)
    mean, std = reference.mean(dim=0), reference.std(dim=0) + 1e-3
    grey = images.mean(dim=1, keepdim=True)
    maps = ((_blur(grey, sigma) - mean).abs() / std * (grey > threshold).float())[:, 0]
    flat = maps.flatten(1)
    scores = flat.topk(max(1, int(top * flat.shape[1])), dim=1).values.mean(dim=1)
    return maps, scores


def _zscore_metrics(train: torch.Tensor, half: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, float]:
    """The z-score floor's metrics on one half (images, masks, labels)."""
    images, masks, labels = half
    maps, scores = zscore_scores(train, images)
    sensitivity, _ = binary_sensitivity_at_specificity(scores, labels.int(), min_specificity=0.95)
    return {
        "image_AUROC": float(binary_auroc(scores, labels.int())),
        "image_SensitivityAtSpecificity": float(sensitivity),
        "pixel_AUROC": float(binary_auroc(maps.flatten(), masks.flatten().int())),
    }


def load_encoder_weights(model: nn.Module, path: Path) -> None:
    """Load a saved encoder into ``model``'s, tensor by tensor (a feature extractor may stop at an earlier layer).

    Raises:
        ValueError: If the file shares no tensor of the same name and shape with the encoder.
    """
    encoder, _ = find_encoder(model)
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = encoder.state_dict()
    shared = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not shared:
        msg = (
            f"Encoder weights file {path} shares no tensor with {type(model).__name__}'s encoder; "
            "save one of the same backbone."
        )
        raise ValueError(msg)
    encoder.load_state_dict(shared, strict=False)


def _engine(output: Path, max_steps: int | None, callbacks: list[Any], accelerator: str) -> Engine:
    """A quiet engine on one device: ``max_steps`` steps validated once at the end (``None``: one epoch, PatchCore)."""
    kwargs: dict[str, Any] = {
        "accelerator": accelerator,
        "devices": 1,
        "logger": False,
        "default_root_dir": str(output),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": callbacks,
    }
    if max_steps is not None:
        kwargs.update(max_steps=max_steps, check_val_every_n_epoch=None, val_check_interval=max_steps)
    return Engine(**kwargs)


def demo_config(config: EncoderConfig, output: Path, arm: str = "") -> Namespace:
    """The slice demo's config (``configs/synthetic_brain.yaml``) with the study's overrides for ``arm``.

    The encoder starts from random weights; ``train_steps`` and ``data`` replace the demo's when set;
    the ``*_calibrated`` arm holds ``calibration_split_ratio`` of the training slices out.
    """
    demo = parse_config(DEFAULT_CONFIG)
    demo["model.init_args.pre_trained"] = False
    if config.train_steps is not None:
        demo["model.init_args.max_steps"] = config.train_steps
    spec = config.data
    if spec is not None:
        demo["model.init_args.image_size"] = spec.image_size
        for field in ("image_size", "num_train", "num_test_normal", "num_test_abnormal", "generation_seed"):
            demo[f"data.init_args.{field}"] = getattr(spec, field)
    root = spec.root if spec is not None and spec.root is not None else output / "data"
    demo["data.init_args.root"] = root
    demo["data.init_args.num_workers"] = 0
    if arm.endswith("_calibrated"):
        demo["data.init_args.calibration_split_ratio"] = config.calibration_split_ratio
    return demo


def demo_pretraining(
    demo: Namespace, steps: int | None, save_path: Path, objective: str | None = None
) -> EncoderPretraining:
    """The demo config's pretraining phase (its ``trainer.callbacks`` entry, else defaults), saving to ``save_path``.

    ``steps`` and ``objective`` replace the demo's when set.
    """
    settings: dict[str, Any] = {}
    for entry in (demo.get("trainer") or {}).get("callbacks") or []:
        spec = entry.as_dict() if isinstance(entry, Namespace) else entry  # a parsed config holds Namespaces
        if isinstance(spec, dict) and str(spec.get("class_path", "")).endswith("EncoderPretraining"):
            settings = dict(spec.get("init_args") or {})
    if steps is not None:
        settings["steps"] = steps
    if objective is not None:
        settings["objective"] = objective
    return EncoderPretraining(**{**settings, "save_path": save_path})


def _build(arm: str, config: EncoderConfig, demo: Namespace) -> tuple[nn.Module, list[Any], int | None]:
    """The model of an arm, the callbacks it trains with and its training length (``None``: one epoch)."""
    ea2d = config_parser().instantiate_classes(demo).model
    steps = int(ea2d.hparams.max_steps)
    if arm.startswith("ea2d"):
        return ea2d, [], steps
    name = arm.removesuffix("_in_domain").removesuffix("_random")
    size = int(demo["model.init_args.image_size"])
    model = build_model(name, ea2d.hparams.backbone, size, steps, evaluator=shared_evaluator(medical=True))
    roi = RegionOfInterest(**(ea2d.hparams.roi or {}), score_reduction="max")
    return model, [roi], None if name == "patchcore" else steps


@quiet_lightning()
def encoder_run(arm: str, seed: int, config: EncoderConfig, output: Path) -> list[dict[str, Any]]:
    """Train and score one arm with one seed; one row per half (validation, test)."""
    set_threads(config.threads)
    seed_everything(seed, workers=True)
    weights = output / "work" / f"encoder_seed{seed}.pth"
    demo = demo_config(config, output, arm)
    datamodule = config_parser().instantiate_classes(demo).data
    datamodule.setup()
    halves = {"validation": datamodule.val_dataloader(), "test": datamodule.test_dataloader()}
    cost = {"pretrain_min": 0.0, "train_min": 0.0}
    if arm == "zscore":
        start = time.perf_counter()
        train, _, _ = _stack(datamodule.train_dataloader())
        results = {half: _zscore_metrics(train, _stack(loader)) for half, loader in halves.items()}
        cost["train_min"] = (time.perf_counter() - start) / 60
    else:
        model, callbacks, steps = _build(arm, config, demo)
        pretraining = None
        if arm.startswith("ea2d_in_domain"):  # the variants save their own encoders
            saved = weights if arm == "ea2d_in_domain" else weights.with_name(f"encoder_{arm}_seed{seed}.pth")
            objective = "simsiam" if arm.endswith("_simsiam") else None
            pretraining = demo_pretraining(demo, config.pretrain_steps, saved, objective)
            callbacks.append(pretraining)
        elif arm.endswith("_in_domain"):
            load_encoder_weights(model, weights)
        engine = _engine(output / "work" / f"{arm}_{seed}", steps, callbacks, config.accelerator)
        start = time.perf_counter()
        engine.fit(model=model, datamodule=datamodule)
        fit_minutes = (time.perf_counter() - start) / 60
        cost["pretrain_min"] = pretraining.seconds / 60 if pretraining is not None else 0.0
        cost["train_min"] = fit_minutes - cost["pretrain_min"]
        results = {
            half: engine.test(model=model, dataloaders=loader, verbose=False)[0] for half, loader in halves.items()
        }
    return [
        {"arm": arm, "seed": seed, "half": half, **cost, **{key: float(values[key]) for key in ENCODER_KEYS}}
        for half, values in results.items()
    ]


def run_encoder(config: EncoderConfig, output: Path) -> list[dict[str, Any]]:
    """Run every arm with every seed, seed after seed; writes ``encoder.csv`` and ``encoder.md``.

    The in-domain arms of anomalib's models read the encoder that ``ea2d_in_domain`` saved for the
    same seed, so that arm runs first. Each finished run's rows are kept in
    ``work/runs/<arm>_<seed>.json``; running the same command again (more seeds, more arms, after an
    interruption) reuses them and runs only what is missing.
    """
    output.mkdir(parents=True, exist_ok=True)
    config_parser().instantiate_classes(demo_config(config, output)).data.prepare_data()
    order = sorted(config.arms, key=lambda arm: (arm.endswith("_in_domain") and not arm.startswith("ea2d"), arm))
    done = output / "work" / "runs"
    done.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for seed in config.seeds:
        for arm in order:
            kept = done / f"{arm}_{seed}.json"
            if kept.is_file():
                rows += json.loads(kept.read_text())
                continue
            run_rows = encoder_run(arm, seed, config, output)
            kept.write_text(json.dumps(run_rows, indent=1))
            rows += run_rows
            logger.info("encoder study: %s seed %d done", arm, seed)
    write_study(output, "encoder", encoder_tables(rows, config), csv={"encoder.csv": rows})
    return rows


def _overrides(config: EncoderConfig) -> str:
    """The study's departures from the demo, for the table captions."""
    parts = []
    if config.train_steps is not None:
        parts.append(f"{config.train_steps} training steps")
    if config.pretrain_steps is not None:
        parts.append(f"{config.pretrain_steps} pretraining steps")
    if config.data is not None:
        parts.append(f"{config.data.image_size} px set of {config.data.num_train} training slices")
    return f" ({', '.join(parts)})" if parts else ""


def encoder_tables(rows: Sequence[dict[str, Any]], config: EncoderConfig) -> list[Table]:
    """One markdown table per half: mean +- sample std per arm, and each phase's cost."""
    tables = []
    for half in HALVES:
        table = Table(
            header=["arm", "runs", "image AUROC", "sens@95%spec", "pixel AUROC", "pretrain (min)", "train+val (min)"],
            caption=f"{half} half of the slice demo's test slices; the demo's models and training length"
            f"{_overrides(config)}; seeds {', '.join(map(str, config.seeds))}; mean +- sample std over each "
            "arm's runs; minutes on this machine.",
        )
        summary = mean_std(
            [r for r in rows if r["half"] == half], ["arm"], [*ENCODER_KEYS, "pretrain_min", "train_min"]
        )
        by_arm = {entry["arm"]: entry for entry in summary}
        for arm in (a for a in ARMS if a in by_arm):
            entry = by_arm[arm]
            table.rows.append(
                [
                    arm,
                    str(entry["runs"]),
                    *(f"{entry[key]:.3f} +- {fmt(entry[f'{key}_std'])}" for key in ENCODER_KEYS),
                    f"{entry['pretrain_min']:.2f}",
                    f"{entry['train_min']:.2f}",
                ]
            )
        tables.append(table)
    return tables


__all__ = [
    "ARMS",
    "ENCODER_KEYS",
    "encoder_run",
    "encoder_tables",
    "load_encoder_weights",
    "run_encoder",
    "zscore_scores",
]
