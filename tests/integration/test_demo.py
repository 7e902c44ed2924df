"""The README's demo (``python -m anomalib_ea2d.demo``) end to end, shrunk to seconds.

The demo's own config is loaded and only its sizes are reduced, so the test exercises the
config the README's first command uses. The machine is made offline (``HF_HUB_OFFLINE=1``, empty
weight caches), so the demo's fallback from ImageNet to random weights is exercised too.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import yaml
from huggingface_hub import constants as hub_constants

from anomalib_ea2d.demo import DEFAULT_CONFIG, load_config, run
from anomalib_ea2d.visualization.report.page import SECTIONS
from tests.helpers.ranking import auroc, average_precision, split_by_label

STEPS = 2


def test_demo_offline_falls_back_and_writes_metrics_heatmaps_and_openvino_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    config = load_config(DEFAULT_CONFIG)
    assert config["model"]["init_args"]["pre_trained"] is True  # the demo asks for ImageNet weights
    config["trainer"].update(val_check_interval=STEPS, accelerator="cpu", devices=1)
    (pretraining,) = (c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("EncoderPretraining"))
    pretraining["init_args"]["steps"] = STEPS
    config["model"]["init_args"].update(max_steps=STEPS, image_size=64)
    config["data"]["init_args"].update(
        image_size=64, num_train=8, num_test_normal=4, num_test_abnormal=4, num_workers=0, train_batch_size=4
    )
    small = tmp_path / "demo.yaml"
    small.write_text(yaml.safe_dump(config))

    with caplog.at_level(logging.INFO):
        metrics = run(small, tmp_path / "out")

    fallback = [r for r in caplog.records if "trains the encoder from random weights" in r.getMessage()]
    assert len(fallback) == 1, [r.getMessage() for r in caplog.records]
    assert "HF_HUB_OFFLINE" in fallback[0].getMessage()
    assert metrics["pre_trained_encoder"] is False
    if config["model"]["init_args"].get("scratch_encoder_lr") is not None:
        assert any("from-scratch recipe, encoder lr" in r.getMessage() for r in caplog.records)

    assert metrics["train_steps"] == STEPS
    # Without ImageNet weights the encoder is learned in-domain first, and one log line says so.
    assert metrics["encoder_pretraining_steps"] == STEPS
    phase = [r for r in caplog.records if r.getMessage().startswith("EncoderPretraining: learning the encoder")]
    assert len(phase) == 1
    fixed = [r for r in caplog.records if "learned encoder stays fixed" in r.getMessage()]
    assert len(fixed) == int(bool(pretraining["init_args"].get("freeze_encoder")))  # the config's setting holds
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved == metrics
    # The image metrics are those of the per-slice table the demo writes, recomputed by hand.
    with (tmp_path / "out" / "image_scores.csv").open() as handle:
        slices = list(csv.DictReader(handle))
    assert len(slices) == 4  # the test half of 4 + 4 test slices
    normal, abnormal = split_by_label(slices)
    assert saved["image_AUROC"] == pytest.approx(auroc(normal, abnormal), abs=1e-6)
    assert saved["image_AveragePrecision"] == pytest.approx(average_precision(normal, abnormal), abs=1e-6)
    predicted = [row["prediction"] == "1" for row in slices]
    labels = [row["label"] == "1" for row in slices]
    flagged_normal = [p for p, label in zip(predicted, labels, strict=True) if not label]
    assert saved["image_Specificity"] == pytest.approx(1 - sum(flagged_normal) / len(flagged_normal), abs=1e-6)
    for row in slices:  # the decision is the normalised score against the threshold at 0.5
        assert (float(row["normalized_score"]) > 0.5) == (row["prediction"] == "1")
    for key in ("pixel_AUROC", "pixel_PRO", "pixel_Dice", "pixel_BestDice", "pixel_AveragePrecision"):
        assert 0.0 <= saved[key] <= 1.0, key
    with (tmp_path / "out" / "metrics.csv").open() as handle:
        rows = {row["metric"]: row["value"] for row in csv.DictReader(handle)}
    assert float(rows["image_AUROC"]) == saved["image_AUROC"]
    heatmaps = sorted((tmp_path / "out" / "heatmaps").glob("*.png"))
    assert any(p.name.startswith("normal_") for p in heatmaps)
    assert any(p.name.startswith("abnormal_") for p in heatmaps)
    assert Path(saved["openvino_model"]).with_suffix(".xml").is_file()
    # The run report: every section, and the image AUROC/AP it prints are the logged ones.
    page = (tmp_path / "out" / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    for key in ("image_AUROC", "image_AveragePrecision", "pixel_AUROC"):
        value = f"{saved[key]:.4f}"
        assert f"<td>{key}</td><td class=num>{value}</td><td class=num>{value}</td>" in page, key

    console = capfd.readouterr()
    text = console.out + console.err
    assert "Traceback" not in text
    assert "onnx_ir" not in text
    assert "onnxscript" not in text
    for line in ("[1/4]", "[4/4] exporting to OpenVINO", "image_AUROC", "Outputs:", "OpenVINO", "report.html"):
        assert line in console.out, line
