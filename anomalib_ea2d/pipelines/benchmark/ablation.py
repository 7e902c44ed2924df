"""The ``ablation`` study: EA2D without one of its parts, next to the full model, over several seeds.

Variants: ``no_attention`` (identity skips), ``one_view`` (the image view only:
``EA2DModel(num_views=1)``), ``no_contrastive`` (contrastive weight 0), ``frozen_encoder``
(encoder learning rate 0). Every run trains the same number of steps with anomalib's Engine and
is tested with the shared evaluator. Writes ``ablation.csv`` (one row per run) and
``ablation.md`` (mean and sample standard deviation per variant).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import seed_everything
from torch import nn

from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D
from anomalib_ea2d.models.image.ea2d.torch_model import EA2DModel
from anomalib_ea2d.pipelines.benchmark.builders import build_datamodule, build_engine, build_model, quiet_lightning
from anomalib_ea2d.pipelines.benchmark.config import ABLATIONS, AblationConfig
from anomalib_ea2d.pipelines.benchmark.measure import StepTimer, set_threads
from anomalib_ea2d.pipelines.benchmark.metrics import METRIC_KEYS, METRIC_LABELS
from anomalib_ea2d.pipelines.benchmark.report import Table, fmt, mean_std, write_study

_LOSS_ARGS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_attention": {},
    "one_view": {"view2_weight": 0.0, "contrastive_weight": 0.0},
    "no_contrastive": {"contrastive_weight": 0.0},
    "frozen_encoder": {"encoder_lr": 0.0},
}


def build_ablation(variant: str, backbone: str, image_size: int, max_steps: int) -> EA2D:
    """EA2D with one ablation switch (:data:`~anomalib_ea2d.pipelines.benchmark.config.ABLATIONS`).

    ``no_attention`` replaces the attention skips by identities (what ``gamma`` fixed at 0
    computes); ``one_view`` builds the torch model with ``num_views=1`` (no rotated view: no second
    attention/decoder branch; its loss weight and the contrastive weight are 0); ``no_contrastive``
    sets ``contrastive_weight=0``; ``frozen_encoder`` sets ``encoder_lr=0`` (the encoder's
    BatchNorm statistics still follow the data).

    Example:
        >>> build_ablation("one_view", "resnet18", 64, max_steps=2).model.num_views
        1
    """
    if variant not in _LOSS_ARGS:
        msg = f"Unknown ablation {variant!r}; choose from {', '.join(ABLATIONS)}."
        raise ValueError(msg)
    model = build_model("ea2d", backbone, image_size, max_steps, ea2d_args=_LOSS_ARGS[variant])
    if variant == "no_attention":
        for branch in model.model.branches:
            branch.attention_e2 = nn.Identity()
            branch.attention_e3 = nn.Identity()
    elif variant == "one_view":
        hparams = model.hparams
        model.model = EA2DModel(
            backbone=backbone,
            pre_trained=False,
            freeze_encoder_bn=hparams.freeze_encoder_bn,
            score_reduction=hparams.score_reduction,
            sigma=hparams.sigma,
            bn_momentum=hparams.bn_momentum,
            num_views=1,
        )
    return model


@quiet_lightning()
def ablation_run(variant: str, seed: int, config: AblationConfig, output: Path) -> dict[str, Any]:
    """Train and test one EA2D variant with one seed."""
    set_threads(config.threads)
    seed_everything(seed, workers=True)
    datamodule = build_datamodule(config.data, output, config.train_batch_size, config.eval_batch_size)
    model = build_ablation(variant, config.backbone, config.data.image_size, config.train_steps)
    timer = StepTimer()
    engine = build_engine(output / "work" / f"ablation_{variant}_{seed}", "ea2d", config.train_steps, [timer])
    start = time.perf_counter()
    engine.fit(model=model, datamodule=datamodule)
    fit_seconds = time.perf_counter() - start
    metrics = engine.test(model=model, datamodule=datamodule, verbose=False)[0]
    return {
        "variant": variant,
        "seed": seed,
        "fit_s": fit_seconds,
        "step_ms": statistics.median(timer.samples[1:] or timer.samples) * 1e3,
        "parameters_m": sum(p.numel() for p in model.model.parameters()) / 1e6,
        **{key: float(metrics[key]) for key in METRIC_KEYS},
    }


def run_ablation(config: AblationConfig, output: Path) -> list[dict[str, Any]]:
    """Run every variant with every seed; writes ``ablation.csv`` (runs) and ``ablation.md`` (mean +- std)."""
    output.mkdir(parents=True, exist_ok=True)
    build_datamodule(config.data, output, config.train_batch_size, config.eval_batch_size).prepare_data()
    rows = [ablation_run(variant, seed, config, output) for seed in config.seeds for variant in config.variants]
    write_study(output, "ablation", [ablation_table(rows, config)], csv={"ablation.csv": rows})
    return rows


def ablation_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample standard deviation per variant of every metric (and of the step time).

    Example:
        >>> scores = dict.fromkeys(METRIC_KEYS, 0.5)
        >>> runs = [{"variant": "full", "step_ms": s, "parameters_m": 1.0, **scores} for s in (1, 3)]
        >>> summary = ablation_summary(runs)[0]
        >>> summary["runs"], summary["step_ms"], round(summary["step_ms_std"], 3)
        (2, 2.0, 1.414)
    """
    return mean_std(rows, ["variant"], [*METRIC_KEYS, "step_ms", "parameters_m"])


def ablation_table(rows: Sequence[dict[str, Any]], config: AblationConfig) -> Table:
    """Markdown table of the ``ablation`` study."""
    table = Table(
        header=["variant", *(METRIC_LABELS[key] for key in METRIC_KEYS), "step (ms)", "parameters (M)"],
        caption=f"EA2D {config.backbone} (random init), {config.data.image_size} px, {config.train_steps} steps of "
        f"batch {config.train_batch_size} per run, seeds {', '.join(map(str, config.seeds))}; mean +- sample std.",
    )
    for entry in ablation_summary(rows):
        table.rows.append(
            [
                entry["variant"],
                *(f"{entry[key]:.3f} +- {fmt(entry[f'{key}_std'])}" for key in METRIC_KEYS),
                f"{entry['step_ms']:.0f}",
                f"{entry['parameters_m']:.1f}",
            ]
        )
    return table


__all__ = ["ablation_run", "ablation_summary", "ablation_table", "build_ablation", "run_ablation"]
