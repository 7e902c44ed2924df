"""The README's demo (``python -m anomalib_ea2d.demo``) end to end, shrunk to seconds.

The demo's own config is loaded and only its sizes are reduced, so the test exercises the
config the README's first command uses.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from anomalib_ea2d.demo import DEFAULT_CONFIG, load_config, run

STEPS = 2


def test_demo_writes_metrics_heatmaps_and_openvino_model(tmp_path: Path) -> None:
    config = load_config(DEFAULT_CONFIG)
    config["trainer"].update(val_check_interval=STEPS, accelerator="cpu", devices=1)
    config["model"]["init_args"].update(max_steps=STEPS, image_size=64)
    config["data"]["init_args"].update(
        image_size=64, num_train=8, num_test_normal=4, num_test_abnormal=4, num_workers=0, train_batch_size=4
    )
    small = tmp_path / "demo.yaml"
    small.write_text(yaml.safe_dump(config))

    metrics = run(small, tmp_path / "out")

    assert metrics["train_steps"] == STEPS
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved == metrics
    for key in ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_PRO"):
        assert 0.0 <= saved[key] <= 1.0
    with (tmp_path / "out" / "metrics.csv").open() as handle:
        rows = {row["metric"]: row["value"] for row in csv.DictReader(handle)}
    assert float(rows["image_AUROC"]) == saved["image_AUROC"]
    heatmaps = sorted((tmp_path / "out" / "heatmaps").glob("*.png"))
    assert any(p.name.startswith("normal_") for p in heatmaps)
    assert any(p.name.startswith("abnormal_") for p in heatmaps)
    assert Path(saved["openvino_model"]).with_suffix(".xml").is_file()
