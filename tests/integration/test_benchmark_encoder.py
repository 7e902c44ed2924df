"""The ``encoder`` study on the smoke preset: every arm, both halves, the floor recomputed, a rerun resumes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torchmetrics.functional.classification import binary_auroc

from anomalib_ea2d.demo import config_parser
from anomalib_ea2d.pipelines.benchmark import load_preset
from anomalib_ea2d.pipelines.benchmark.encoder import ENCODER_KEYS, demo_config, run_encoder, zscore_scores

pytestmark = pytest.mark.usefixtures("one_thread")


def test_encoder_study_reports_every_arm_on_both_halves_and_resumes(tmp_path: Path) -> None:
    config = load_preset("smoke")["encoder"]
    rows = run_encoder(config, tmp_path)
    assert {(r["arm"], r["half"]) for r in rows} == {(a, h) for a in config.arms for h in ("validation", "test")}
    for row in rows:
        for key in ENCODER_KEYS:
            assert 0.0 <= row[key] <= 1.0, (row["arm"], key)
    pretrained = [r for r in rows if r["arm"].startswith("ea2d_in_domain")]
    assert len(pretrained) == 6
    assert all(r["pretrain_min"] > 0 for r in pretrained)
    assert (tmp_path / "work" / "encoder_seed0.pth").is_file()  # what the RD and PatchCore arms loaded
    # the calibrated and contrastive arms learned their own encoders (the calibrated one without the held-out slices)
    assert (tmp_path / "work" / "encoder_ea2d_in_domain_calibrated_seed0.pth").is_file()
    simsiam = torch.load(tmp_path / "work" / "encoder_ea2d_in_domain_simsiam_seed0.pth")
    segmentation = torch.load(tmp_path / "work" / "encoder_seed0.pth")
    assert any(not torch.equal(simsiam[k], segmentation[k]) for k in simsiam if simsiam[k].is_floating_point())
    held_out = config_parser().instantiate_classes(demo_config(config, tmp_path, "ea2d_in_domain_calibrated")).data
    held_out.setup()
    subjects = [
        {Path(p).name.split("_")[1] for p in d.samples.image_path}
        for d in (held_out.train_data, held_out.calibration_data)
    ]
    assert subjects[1]  # whole simulated subjects held out, none of them left in training
    assert not subjects[0] & subjects[1]
    assert len(held_out.train_data) + len(held_out.calibration_data) == config.data.num_train

    # The z-score floor's test-half image AUROC, recomputed from the generated files.
    datamodule = config_parser().instantiate_classes(demo_config(config, tmp_path)).data
    datamodule.setup()
    train = torch.cat([b.image for b in datamodule.train_dataloader()])
    test = list(datamodule.test_dataloader())
    _, scores = zscore_scores(train, torch.cat([b.image for b in test]))
    labels = torch.cat([b.gt_label for b in test]).int()
    floor = next(r for r in rows if r["arm"] == "zscore" and r["half"] == "test")
    assert floor["image_AUROC"] == pytest.approx(float(binary_auroc(scores, labels)), abs=1e-6)

    with (tmp_path / "encoder.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    text = (tmp_path / "encoder.md").read_text()
    assert "validation half" in text
    assert "test half" in text

    # A rerun reuses every finished run (the kept rows, not a new training).
    kept = tmp_path / "work" / "runs" / "ea2d_in_domain_0.json"
    marked = json.loads(kept.read_text())
    marked[0]["image_AUROC"] = 0.123456
    kept.write_text(json.dumps(marked))
    again = run_encoder(config, tmp_path)
    assert any(r["image_AUROC"] == 0.123456 for r in again)
