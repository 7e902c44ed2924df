r"""Score reduction of the encoder study's trained EA2D models: ``mean`` (the demo's), ``topk`` or ``max``.

The demo's ``score_reduction: mean`` was chosen by the lever study with a *random* encoder. This
script reloads the EA2D checkpoints that ``python -m anomalib_ea2d.pipelines.benchmark encoder``
left under ``OUTPUT/work/<arm>_<seed>/`` (``--arms``; default the demo's ``ea2d_in_domain``),
with their weights, map statistics and ROI as trained, and scores both halves of the demo's test
slices with each reduction, on raw scores. Choose by the validation half; the test half is
reported next to it. Writes one JSON line per (arm, seed, reduction) to ``--output`` and prints
the table (mean +- sd over seeds)::

    .venv/bin/python benchmarks/encoder_reductions.py --study results/encoder \
        --output results/encoder_reductions.jsonl
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torchmetrics.functional.classification import binary_auroc, binary_sensitivity_at_specificity

from anomalib_ea2d import EA2D
from anomalib_ea2d.demo import config_parser
from anomalib_ea2d.pipelines.benchmark import load_preset
from anomalib_ea2d.pipelines.benchmark.encoder import demo_config
from anomalib_ea2d.pipelines.benchmark.report import Table, fmt_mean_std, mean_std

REDUCTIONS = ("mean", "topk", "max")
VALUES = ("val_image_AUROC", "image_AUROC", "image_SensitivityAtSpecificity")
RUN = re.compile(r"^(ea2d_[a-z_]+)_(\d+)$")


@torch.no_grad()
def _raw(model: EA2D, loader: object) -> dict[str, torch.Tensor]:
    """Raw image scores of the torch model over a loader, with the labels."""
    scores, labels = [], []
    for batch in loader:
        scores.append(model.model(model.pre_processor(batch.image)).pred_score.reshape(-1))
        labels.append(batch.gt_label)
    return {"score": torch.cat(scores), "label": torch.cat(labels).int()}


def score_run(checkpoint: Path, arm: str, seed: int, study: Path, preset: str) -> list[dict[str, object]]:
    """One row per reduction for one trained model (``preset``: the one the study ran with)."""
    config = load_preset(preset)["encoder"]
    data = config_parser().instantiate_classes(demo_config(config, study, arm)).data
    data.setup()
    model = EA2D.load_from_checkpoint(checkpoint, weights_only=False).eval()
    rows = []
    for reduction in REDUCTIONS:
        model.model.anomaly_map_generator.score_reduction = reduction
        val, test = _raw(model, data.val_dataloader()), _raw(model, data.test_dataloader())
        sensitivity, _ = binary_sensitivity_at_specificity(test["score"], test["label"], min_specificity=0.95)
        rows.append(
            {
                "arm": arm,
                "seed": seed,
                "score_reduction": reduction,
                "val_image_AUROC": float(binary_auroc(val["score"], val["label"])),
                "image_AUROC": float(binary_auroc(test["score"], test["label"])),
                "image_SensitivityAtSpecificity": float(sensitivity),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Score every EA2D run of the study and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True, help="the encoder study's --output folder")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--preset", default="full", help="the preset the study ran with (default: full)")
    parser.add_argument("--arms", nargs="+", default=["ea2d_in_domain"], help="EA2D arms (default: the demo's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for folder in sorted((args.study / "work").iterdir()):
        match = RUN.match(folder.name)
        checkpoints = sorted(folder.rglob("*.ckpt"))
        if match is None or match.group(1) not in args.arms or not checkpoints:
            continue
        rows += score_run(checkpoints[-1], match.group(1), int(match.group(2)), args.study, args.preset)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("".join(json.dumps(row) + "\n" for row in rows))
    table = Table(header=["arm", "score_reduction", "seeds", *VALUES])
    for entry in mean_std(rows, ("arm", "score_reduction"), VALUES):
        table.rows.append(
            [entry["arm"], entry["score_reduction"], str(entry["runs"]), *(fmt_mean_std(entry, k) for k in VALUES)]
        )
    print(table.markdown())


if __name__ == "__main__":
    main()
