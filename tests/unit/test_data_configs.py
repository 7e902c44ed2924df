"""The configs in ``configs/`` parse with ``anomalib train --config X --print_config`` and hold the paper recipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from anomalib_ea2d.data.paper_datasets import TEST_ABNORMAL_DIR, TEST_NORMAL_DIR, TRAIN_DIR

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DATASET_CONFIGS = ["oct2017", "aptos2019", "isic2018", "br35h", "synthetic_brain"]

# The paper's per-dataset recipe (Tang et al., TMI 2025); everything else is EA2D's defaults.
PAPER_RECIPE: dict[str, dict[str, Any]] = {
    "oct2017": {"max_steps": 2000, "lr": 5e-4, "encoder_lr": 1e-5, "freeze_encoder_bn": True, "score_reduction": "max"},
    "aptos2019": {
        "max_steps": 1200,
        "lr": 5e-4,
        "encoder_lr": 1e-5,
        "freeze_encoder_bn": False,
        "score_reduction": "max",
    },
    "isic2018": {
        "max_steps": 400,
        "lr": 1e-4,
        "encoder_lr": 1e-5,
        "freeze_encoder_bn": False,
        "score_reduction": "mean",
    },
    "br35h": {"max_steps": 4000, "lr": 5e-4, "encoder_lr": 5e-5, "freeze_encoder_bn": False, "score_reduction": "max"},
}
COMMON_RECIPE = {
    "backbone": "resnet50",
    "pre_trained": True,
    "weight_decay": 1e-4,
    "gradient_clip_norm": 1.0,
    "bn_momentum": 0.01,
}

# Runs the anomalib console entry point once per config inside one interpreter (imports cost ~10 s).
_SCRIPT = r"""
import contextlib, io, json, sys
from anomalib.cli.cli import main
results = {}
for config in sys.argv[1:]:
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = ["anomalib", "train", "--config", config, "--print_config"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    results[config] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()[-3000:]}
print("RESULTS=" + json.dumps(results))
"""


@pytest.fixture(scope="module")
def printed() -> dict[str, dict[str, Any]]:
    configs = [str(CONFIG_DIR / f"{name}.yaml") for name in DATASET_CONFIGS]
    process = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *configs],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    line = next((ln for ln in process.stdout.splitlines() if ln.startswith("RESULTS=")), None)
    assert line is not None, process.stderr[-3000:]
    results = json.loads(line.removeprefix("RESULTS="))
    parsed = {}
    for name in DATASET_CONFIGS:
        result = results[str(CONFIG_DIR / f"{name}.yaml")]
        assert result["code"] == 0, f"{name}.yaml does not parse:\n{result['stderr']}"
        parsed[name] = yaml.safe_load(result["stdout"])
    return parsed


@pytest.mark.parametrize("name", DATASET_CONFIGS)
def test_config_parses_and_validates_once_at_the_end(printed: dict[str, dict[str, Any]], name: str) -> None:
    config = printed[name]
    args = config["model"]["init_args"]
    assert config["model"]["class_path"] == "anomalib_ea2d.EA2D"
    # Validation = threshold/normalisation calibration of the final model only: exactly at the last step.
    assert config["trainer"]["check_val_every_n_epoch"] is None
    assert config["trainer"]["val_check_interval"] == args["max_steps"]
    # No model selection on the test set: no extra (e.g. best-metric checkpoint) callbacks.
    assert config["trainer"]["callbacks"] is None
    # Synthetic set: thresholds calibrated on a held-out half of the test slices; paper sets: their protocol.
    expected = "from_test" if name == "synthetic_brain" else "same_as_test"
    assert str(config["data"]["init_args"]["val_split_mode"]).lower() == expected


@pytest.mark.parametrize("name", sorted(PAPER_RECIPE))
def test_paper_recipe(printed: dict[str, dict[str, Any]], name: str) -> None:
    config = printed[name]
    args = config["model"]["init_args"]
    for key, value in {**COMMON_RECIPE, **PAPER_RECIPE[name]}.items():
        assert args[key] == pytest.approx(value) if isinstance(value, float) else args[key] == value, key
    data = config["data"]["init_args"]
    assert config["data"]["class_path"] == "anomalib.data.Folder"
    assert data["train_batch_size"] == 32
    # The Folder arguments match the layout written by ``python -m anomalib_ea2d.data.prepare``.
    assert (data["normal_dir"], data["normal_test_dir"], data["abnormal_dir"]) == (
        TRAIN_DIR,
        TEST_NORMAL_DIR,
        TEST_ABNORMAL_DIR,
    )
    assert str(data["test_split_mode"]).lower() == "from_dir"


def _transforms(config: dict[str, Any]) -> list[dict[str, Any]]:
    pre = config["model"]["init_args"]["pre_processor"]
    return pre["init_args"]["transform"]["init_args"]["transforms"]


def test_isic_resizes_256_and_crops_224(printed: dict[str, dict[str, Any]]) -> None:
    steps = {t["class_path"].rsplit(".", 1)[-1]: t["init_args"] for t in _transforms(printed["isic2018"])}
    assert list(steps) == ["Resize", "CenterCrop", "Normalize"]
    assert steps["Resize"]["size"] == [256, 256]
    assert steps["CenterCrop"]["size"] == [224, 224]


@pytest.mark.parametrize("name", ["oct2017", "aptos2019", "br35h"])
def test_other_datasets_use_256_px(printed: dict[str, dict[str, Any]], name: str) -> None:
    args = printed[name]["model"]["init_args"]
    assert args["pre_processor"] is True
    assert args["image_size"] == 256


def test_synthetic_demo_is_cpu_sized(printed: dict[str, dict[str, Any]]) -> None:
    config = printed["synthetic_brain"]
    args = config["model"]["init_args"]
    assert args["backbone"] == "resnet18"
    assert args["pre_trained"] is True  # the demo falls back to random weights offline
    assert args["image_size"] == 128
    assert args["roi"]  # medical settings on in the demo, off in the paper recipes
    assert args["metrics"] == "medical"
    assert args["post_processor"]["class_path"].endswith("SpecificityPostProcessor")
    assert args["max_steps"] <= 1000
    assert config["data"]["class_path"] == "anomalib_ea2d.data.SyntheticBrainMRI"
    assert config["data"]["init_args"]["image_size"] == 128


@pytest.mark.parametrize("name", ["oct2017", "aptos2019", "isic2018", "br35h"])
def test_paper_recipes_keep_whole_image_and_paper_encoder_lr(printed: dict[str, dict[str, Any]], name: str) -> None:
    args = printed[name]["model"]["init_args"]
    assert args["roi"] is None
    assert args["scratch_encoder_lr"] is None
