r"""Why the volume demo's slice scores miss lesions: they follow the slice's height in the brain.

Reloads a volume demo checkpoint (``anomalib train --config configs/synthetic_brain_volumes.yaml``
writes ``OUT/EA2D/SyntheticBrainVolumes/v0/weights/lightning/model.ckpt``), rebuilds the demo's
datamodule (its splits have a fixed seed) and takes each view's raw anomaly map of every slice of
the 4 held-out calibration volumes and of the **validation** volumes (never the test half). It then
scores the validation half two ways, with the model's own score (ROI mean of the two views):

- ``one set``: the demo's map standardisation (per-position statistics of all calibration slices);
- ``per level``: the same statistics fitted separately for ``--bins`` bands of each slice's relative
  height within its volume's slice range.

and prints where the highest-scoring slice of each volume lies, the mean score of normal slices by
height, and image / pixel / volume AUROC both ways::

    .venv/bin/python benchmarks/volume_levels.py --checkpoint OUT/EA2D/.../model.ckpt --data-root DIR
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from lightning.pytorch import seed_everything
from torchmetrics.functional.classification import binary_auroc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anomalib_ea2d import EA2D
from anomalib_ea2d.data.volumes.dataset import parse_slice_path
from anomalib_ea2d.demo import config_parser, parse_config
from anomalib_ea2d.models.components.score_reduction import reduce_map
from anomalib_ea2d.models.image.ea2d.anomaly_map import rotate180
from anomalib_ea2d.models.image.ea2d.components.standardization import MapStandardizer

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "synthetic_brain_volumes.yaml"


@torch.no_grad()
def view_maps(model: EA2D, subset: object) -> dict[str, torch.Tensor | list]:
    """Raw view maps, ROI cells, slice labels and lesion cells of every slice of ``subset``."""
    loader = torch.utils.data.DataLoader(subset, batch_size=32, collate_fn=subset.collate_fn)
    parts: dict[str, list] = defaultdict(list)
    for batch in loader:
        images = model.pre_processor.transform(batch.image)
        maps = model.model.view_maps(images)
        size = maps.shape[-2:]
        parts["maps"].append(maps)
        parts["cells"].append((F.adaptive_avg_pool2d(model.model.roi_foreground(images), size) >= 0.5).float())
        mask = batch.gt_mask if batch.gt_mask is not None else torch.zeros(images.shape[0], *images.shape[-2:])
        parts["lesion"].append(F.adaptive_max_pool2d(mask.float().reshape(-1, 1, *mask.shape[-2:]), size) > 0)
        parts["labels"].append(batch.gt_label.long())
        parts["keys"] += [parse_slice_path(path) for path in batch.image_path]
    out: dict[str, torch.Tensor | list] = {k: torch.cat(v) for k, v in parts.items() if k != "keys"}
    out["keys"] = parts["keys"]
    return out


def heights(keys: list[tuple[str, int]]) -> torch.Tensor:
    """Each slice's relative height in its volume's scored slice range, 0 (lowest) to 1."""
    indices = defaultdict(list)
    for volume, index in keys:
        indices[volume].append(index)
    return torch.tensor([(i - min(indices[v])) / max(max(indices[v]) - min(indices[v]), 1) for v, i in keys])


def standardised(
    maps: torch.Tensor, reference: torch.Tensor, ref_bands: torch.Tensor, bands: torch.Tensor
) -> torch.Tensor:
    """``maps`` standardised per position by the ``reference`` maps of the same band (MapStandardizer per band)."""
    out = torch.zeros_like(maps)
    for band in bands.unique().tolist():
        standardizer = MapStandardizer(num_views=2)
        standardizer.update(reference[ref_bands == band])
        standardizer.finish()
        chosen = bands == band
        for view in (0, 1):
            out[chosen, view : view + 1] = standardizer(maps[chosen, view : view + 1], view)
    return out


def report(name: str, maps: torch.Tensor, val: dict) -> None:
    """Image, pixel and volume AUROC of the validation half with standardised ``maps``; where the scores peak."""
    cells = val["cells"]
    views = (cells, rotate180(cells))
    score = sum(reduce_map(maps[:, v : v + 1], "mean", roi=views[v]) for v in (0, 1)) / 2
    combined = (maps[:, :1] + rotate180(maps[:, 1:])) / 2 * cells
    height = heights(val["keys"])
    slices: dict[str, list[int]] = defaultdict(list)
    for i, (volume, _) in enumerate(val["keys"]):
        slices[volume].append(i)
    peaks = [max(rows, key=lambda i: float(score[i])) for rows in slices.values()]
    labels = torch.tensor([int(val["labels"][rows].max()) for rows in slices.values()])
    image = binary_auroc(score, val["labels"])
    pixel = binary_auroc(combined.flatten(), val["lesion"].flatten().long())
    volume = binary_auroc(score[peaks], labels)
    print(f"{name:10s} image AUROC {image:.3f}  pixel AUROC {pixel:.3f}  volume AUROC {volume:.3f}")
    normal = val["labels"] == 0
    bands = ", ".join(
        f"{lo:.1f}-{min(hi, 1.0):.1f}: {score[normal & (height >= lo) & (height < hi)].mean():.2f}"
        for lo, hi in ((0.0, 0.1), (0.1, 0.5), (0.5, 1.01))
    )
    low = sum(float(height[i]) <= 0.1 for i in peaks)
    print(f"{'':10s} peak slice in the lowest 10 %: {low} of {len(peaks)} volumes; mean score of normal slices by "
          f"height {bands}; of lesion slices {score[~normal].mean():.2f}")  # fmt: skip


def main() -> None:
    """Parse the arguments, score the validation half both ways and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--bins", type=int, default=8)
    args = parser.parse_args()
    seed_everything(0)
    demo = parse_config(CONFIG)
    demo["data.init_args.root"] = args.data_root
    demo["data.init_args.num_workers"] = 0
    data = config_parser().instantiate_classes(demo).data
    data.setup()
    model = EA2D.load_from_checkpoint(args.checkpoint).eval()
    cal, val = view_maps(model, data.calibration_data), view_maps(model, data.val_data)
    one = torch.zeros(len(cal["keys"]), dtype=torch.long), torch.zeros(len(val["keys"]), dtype=torch.long)
    report("one set", standardised(val["maps"], cal["maps"], one[0], one[1]), val)
    bands = [(heights(s["keys"]) * args.bins).long().clamp(max=args.bins - 1) for s in (cal, val)]
    report("per level", standardised(val["maps"], cal["maps"], bands[0], bands[1]), val)


if __name__ == "__main__":
    main()
