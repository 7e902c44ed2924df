r"""Demo lever study: what ROI, score reduction, image size, steps and the from-scratch recipe buy on the synthetic set.

Each *training* setting (encoder learning rate, steps, image size, seed) trains EA2D once on the
synthetic brain-MRI set exactly as the demo does (``configs/synthetic_brain.yaml`` with overrides);
the *inference* levers (per-position map standardisation off / with statistics of the training
images / of the normal validation images, region of interest on/off, score
reduction ``max``/``mean``/``topk``) are then applied to that one trained model, since they do not
change training (the standardisation's statistics come from the training images after training).
For every combination it reports:

- image AUROC on the validation half (``val_image_AUROC``: choose levers by this one) and on the
  test half;
- pixel AUROC on the test half (threshold-free, raw scores);
- image sensitivity at the operating point whose threshold flags 5 % of the *normal validation*
  images (the held-out half; never the tested images), and the specificity it reaches on test.

One JSON line per (training setting, inference variant) is appended to ``--output``::

    nice -n 15 .venv/bin/python benchmarks/levers.py --steps 100 --encoder-lr 1e-5 1e-3 --seeds 0 \\
        --output results/levers.jsonl
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anomalib.engine import Engine
from lightning.pytorch import seed_everything
from torchmetrics.classification import BinaryAUROC

from anomalib_ea2d import EA2D
from anomalib_ea2d.callbacks.roi import foreground_for
from anomalib_ea2d.data import SyntheticBrainMRI
from anomalib_ea2d.post_processing.specificity_post_processor import threshold_at_fpr

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "synthetic_brain.yaml"
REDUCTIONS = ("max", "mean", "topk")


@torch.no_grad()
def _predict(model: EA2D, loader: Any) -> dict[str, torch.Tensor]:  # noqa: ANN401
    """Raw (not normalised) scores and maps of the torch model over a dataloader, with labels and masks."""
    model.eval()
    scores, maps, labels, masks = [], [], [], []
    for batch in loader:
        output = model.model(model.pre_processor(batch.image))
        scores.append(output.pred_score)
        maps.append(output.anomaly_map.squeeze(1))
        labels.append(batch.gt_label)
        masks.append(batch.gt_mask)
    return {
        "score": torch.cat(scores),
        "map": torch.cat(maps),
        "label": torch.cat(labels).int(),
        "mask": torch.cat(masks).int(),
    }


def _variant_metrics(val: dict[str, torch.Tensor], test: dict[str, torch.Tensor]) -> dict[str, float]:
    threshold = threshold_at_fpr(val["score"][val["label"] == 0], 0.05)
    flagged = test["score"] > threshold
    positive = test["label"] == 1
    return {
        "val_image_AUROC": float(BinaryAUROC()(val["score"], val["label"])),
        "image_AUROC": float(BinaryAUROC()(test["score"], test["label"])),
        "pixel_AUROC": float(BinaryAUROC(thresholds=200)(test["map"].flatten(), test["mask"].flatten())),
        "image_sensitivity_at_op": float(flagged[positive].float().mean()),
        "image_specificity_at_op": float((~flagged[~positive]).float().mean()),
    }


def _save_maps(model: EA2D, datamodule: Any, foreground: Any, folder: Path, setting: dict[str, Any]) -> None:  # noqa: ANN401
    """Save the raw (no ROI, ``max``) predictions and the ROI foreground of both halves for offline study."""
    model.model.roi_foreground = None
    model.model.anomaly_map_generator.score_reduction = "max"
    saved: dict[str, Any] = {"setting": setting}
    for name, loader in (("val", datamodule.val_dataloader()), ("test", datamodule.test_dataloader())):
        saved[name] = _predict(model, loader)
        with torch.no_grad():
            images = torch.cat([batch.image for batch in loader])
            saved[name]["roi"] = foreground(model.pre_processor(images)).squeeze(1).bool()
    folder.mkdir(parents=True, exist_ok=True)
    name = "_".join(f"{key}{value}" for key, value in setting.items())
    torch.save(saved, folder / f"maps_{name}.pt")


def run_setting(
    setting: dict[str, Any], roi_settings: dict[str, Any], output: Path, save_maps: Path | None = None
) -> None:
    """Train one setting and append one JSON line per inference variant to ``output``.

    With ``save_maps``, the raw validation and test maps (no ROI), scores, labels, masks and ROI
    foregrounds of the trained model are also saved there, one ``.pt`` file per setting.
    """
    config = yaml.safe_load(CONFIG.read_text())
    seed_everything(setting["seed"], workers=True)
    size, steps = setting["image_size"], setting["steps"]
    data = config["data"]
    if isinstance(data, str):  # the recipe names the set's datamodule config, relative to itself
        data = yaml.safe_load((CONFIG.parent / data).read_text())
    data_args = {**data["init_args"], "image_size": size}
    model_args = {**config["model"]["init_args"], "image_size": size, "max_steps": steps, "pre_trained": False}
    model_args.update(encoder_lr=setting["encoder_lr"], roi=None, score_reduction="max", standardize_maps=True)
    model_args.pop("post_processor", None)
    model_args.pop("scratch_encoder_lr", None)
    with tempfile.TemporaryDirectory() as tmp:
        datamodule = SyntheticBrainMRI(root=output.parent / f"levers_data_{size}", **data_args)
        model = EA2D(**model_args)
        engine = Engine(
            default_root_dir=Path(tmp) / "results",
            logger=False,
            max_steps=steps,
            val_check_interval=steps,
            check_val_every_n_epoch=None,
            enable_progress_bar=False,
        )
        started = time.perf_counter()
        engine.fit(model=model, datamodule=datamodule)
        train_seconds = time.perf_counter() - started
        foreground = foreground_for(model, roi_settings)
        generator = model.model.anomaly_map_generator
        standardizers = {"train": generator.standardizer}  # fitted on the training images before validation
        # The same statistics from the normal *validation* images instead (held out from training).
        generator.standardizer = copy.deepcopy(standardizers["train"])
        with torch.no_grad():
            normal = [model.pre_processor(b.image[b.gt_label == 0]) for b in datamodule.val_dataloader()]
        model.model.fit_map_statistics([images for images in normal if len(images)])
        standardizers["val_normal"] = generator.standardizer
        generator.standardizer = None
        if save_maps is not None:
            _save_maps(model, datamodule, foreground, save_maps, setting)
        for standardize, roi, reduction in itertools.product(("off", *standardizers), (False, True), REDUCTIONS):
            generator.standardizer = standardizers.get(standardize)
            model.model.roi_foreground = foreground if roi else None
            generator.score_reduction = reduction
            val = _predict(model, datamodule.val_dataloader())
            test = _predict(model, datamodule.test_dataloader())
            row = {**setting, "standardize_maps": standardize, "roi": roi, "score_reduction": reduction}
            row["train_seconds"] = round(train_seconds, 1)
            row.update(_variant_metrics(val, test))
            with output.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[300])
    parser.add_argument("--image-size", type=int, nargs="+", default=[128])
    parser.add_argument("--encoder-lr", type=float, nargs="+", default=[1e-5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output", type=Path, default=Path("results/levers.jsonl"))
    parser.add_argument("--save-maps", type=Path, default=None, help="folder for the raw maps of each setting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    roi_settings = yaml.safe_load(CONFIG.read_text())["model"]["init_args"].get("roi") or True
    for seed, steps, size, encoder_lr in itertools.product(args.seeds, args.steps, args.image_size, args.encoder_lr):
        setting = {"seed": seed, "steps": steps, "image_size": size, "encoder_lr": encoder_lr}
        run_setting(setting, roi_settings, args.output, args.save_maps)


if __name__ == "__main__":
    main()
