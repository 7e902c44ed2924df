"""The configs in ``configs/`` resolve with the ``anomalib`` CLI (``--print_config``) and hold the paper recipe.

Each recipe (``configs/<name>.yaml``) reads its datamodule from ``configs/data/<name>.yaml``; the data
configs also run with any other anomalib model (``anomalib train --model M --data configs/data/<name>.yaml``).
The paper data configs' validation set is held-out normal training images, never a test image: checked
through the datamodule the config builds, on a tiny split in the layout ``prepare`` writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from anomalib.data import AnomalibDataModule
from jsonargparse import ArgumentParser

from anomalib_ea2d.data.layout import TEST_ABNORMAL_DIR, TEST_NORMAL_DIR, TRAIN_DIR
from tests.helpers.raw_splits import image

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
DATASET_CONFIGS = ["oct2017", "aptos2019", "isic2018", "br35h", "synthetic_brain"]
OTHER_MODEL = "ReverseDistillation"

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

# Runs the anomalib console entry point once per argument list inside one interpreter (imports cost ~10 s).
_SCRIPT = r"""
import contextlib, io, json, sys
from anomalib.cli.cli import main
results = {}
for key, args in json.loads(sys.argv[1]).items():
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = ["anomalib", "train", *args, "--print_config"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    results[key] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()[-3000:]}
print("RESULTS=" + json.dumps(results))
"""


def _inlined(name: str) -> dict[str, Any]:
    """The recipe as one file: its text with the data config it names put in place of the path."""
    recipe = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    recipe["data"] = yaml.safe_load((CONFIG_DIR / recipe["data"]).read_text())
    return recipe


def _print_configs(runs: dict[str, list[str]], cwd: Path) -> dict[str, dict[str, Any]]:
    """``anomalib train <args> --print_config`` for each named argument list: exit code, stdout, stderr."""
    process = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )
    line = next((ln for ln in process.stdout.splitlines() if ln.startswith("RESULTS=")), None)
    assert line is not None, process.stderr[-3000:]
    return json.loads(line.removeprefix("RESULTS="))


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Printed configs: ``recipe/<name>``, ``inlined/<name>`` (one-file form), ``other/<name>`` (other model)."""
    work = tmp_path_factory.mktemp("configs")
    runs: dict[str, list[str]] = {}
    for name in DATASET_CONFIGS:
        runs[f"recipe/{name}"] = ["--config", str(CONFIG_DIR / f"{name}.yaml")]
        inlined = work / f"{name}.yaml"
        inlined.write_text(yaml.safe_dump(_inlined(name), sort_keys=False))
        runs[f"inlined/{name}"] = ["--config", str(inlined)]
        runs[f"other/{name}"] = ["--model", OTHER_MODEL, "--data", str(CONFIG_DIR / "data" / f"{name}.yaml")]
    # Run outside the repository: the data paths inside the recipes resolve against the recipe's folder.
    results = _print_configs(runs, work)
    parsed = {}
    for key in runs:
        assert results[key]["code"] == 0, f"{key} does not parse:\n{results[key]['stderr']}"
        parsed[key] = yaml.safe_load(results[key]["stdout"])
    return parsed


@pytest.fixture(scope="module")
def printed(resolved: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The recipes as ``anomalib train --config configs/<name>.yaml --print_config`` resolves them."""
    return {name: resolved[f"recipe/{name}"] for name in DATASET_CONFIGS}


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted.key: value}`` of every scalar in a nested dict/list, list items keyed by index."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _leaves(value, f"{prefix}{key}.").items()}
    if isinstance(tree, list):
        return {k: v for i, value in enumerate(tree) for k, v in _leaves(value, f"{prefix}{i}.").items()}
    return {prefix.removesuffix("."): tree}


@pytest.mark.parametrize("name", DATASET_CONFIGS)
def test_recipe_reads_its_data_config_with_unchanged_meaning(
    resolved: dict[str, dict[str, Any]],
    name: str,
) -> None:
    recipe = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    # The recipe names its data config instead of repeating the data block.
    assert recipe["data"] == f"data/{name}.yaml"
    # Same resolved config as the recipe written as one file with the data block inline.
    assert resolved[f"recipe/{name}"] == resolved[f"inlined/{name}"]
    # Every value the recipe and its data config set is what the CLI resolves.
    printed = _leaves(resolved[f"recipe/{name}"])
    for key, value in _leaves(_inlined(name)).items():
        assert key in printed, key
        assert printed[key] == value, key


@pytest.mark.parametrize("name", DATASET_CONFIGS)
def test_data_config_runs_with_another_anomalib_model(resolved: dict[str, dict[str, Any]], name: str) -> None:
    other = resolved[f"other/{name}"]
    assert other["model"]["class_path"].rsplit(".", 1)[-1] == OTHER_MODEL
    # The other model gets exactly the datamodule EA2D's recipe gets.
    assert other["data"] == resolved[f"recipe/{name}"]["data"]
    printed = _leaves(other["data"])
    for key, value in _leaves(yaml.safe_load((CONFIG_DIR / "data" / f"{name}.yaml").read_text())).items():
        assert printed[key] == value, key


@pytest.mark.parametrize("name", DATASET_CONFIGS)
def test_config_parses_and_validates_once_at_the_end(printed: dict[str, dict[str, Any]], name: str) -> None:
    config = printed[name]
    args = config["model"]["init_args"]
    assert config["model"]["class_path"] == "anomalib_ea2d.EA2D"
    # Validation = threshold/normalisation calibration of the final model only: exactly at the last step.
    assert config["trainer"]["check_val_every_n_epoch"] is None
    assert config["trainer"]["val_check_interval"] == args["max_steps"]
    # No model selection on the test set: no extra (e.g. best-metric checkpoint) callbacks; the demo's only
    # callback is the in-domain pretraining of a random encoder, which sees the training images only.
    callbacks = config["trainer"]["callbacks"] or []
    assert [c["class_path"] for c in callbacks] == (
        ["anomalib_ea2d.callbacks.EncoderPretraining"] if name == "synthetic_brain" else []
    )
    # Synthetic set: thresholds calibrated on a held-out half of the test slices, which is then not tested;
    # paper sets: on held-out normal training images (see test_paper_validation_set_is_not_the_test_set).
    expected = "from_test" if name == "synthetic_brain" else "from_train"
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
    # Validation: a fixed 10 % of the normal training images; the operating point is set on them.
    assert (str(data["val_split_mode"]).lower(), data["val_split_ratio"], data["seed"]) == ("from_train", 0.1, 0)
    post = config["model"]["init_args"]["post_processor"]
    assert post["class_path"] == "anomalib_ea2d.SpecificityPostProcessor"
    assert post["init_args"]["image_fpr"] == pytest.approx(0.05)


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


def _paper_datamodule(name: str, root: Path) -> AnomalibDataModule:
    """The datamodule ``configs/data/<name>.yaml`` builds (as anomalib's CLI builds it), on ``root``, set up."""
    config = yaml.safe_load((CONFIG_DIR / "data" / f"{name}.yaml").read_text())
    config["init_args"].update(root=str(root), num_workers=0)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(AnomalibDataModule, "data")
    datamodule = parser.instantiate_classes(parser.parse_object({"data": config})).data
    datamodule.setup()
    return datamodule


@pytest.mark.parametrize("name", sorted(PAPER_RECIPE))
def test_paper_validation_set_is_not_the_test_set(tmp_path: Path, name: str) -> None:
    counts = {TRAIN_DIR: 20, TEST_NORMAL_DIR: 4, TEST_ABNORMAL_DIR: 4}
    for folder, count in counts.items():
        for index in range(count):
            image(tmp_path / folder / f"{index:02d}.png", size=(16, 16), value=40 + 5 * index)
    datamodule = _paper_datamodule(name, tmp_path)
    train, val, test = (
        {Path(p).relative_to(tmp_path).as_posix() for p in data.samples.image_path}
        for data in (datamodule.train_data, datamodule.val_data, datamodule.test_data)
    )
    assert not val & test
    assert not val & train  # held out: the model never trains on its validation images
    assert {Path(path).parent.as_posix() for path in val} == {TRAIN_DIR}
    assert (len(train), len(val)) == (18, 2)  # 10 % of the 20 normal training images
    assert set(datamodule.val_data.samples.label_index) == {0}
    assert len(test) == counts[TEST_NORMAL_DIR] + counts[TEST_ABNORMAL_DIR]  # the whole test set is tested
    # A fixed draw: every run validates on the same images.
    again = _paper_datamodule(name, tmp_path)
    assert {Path(p).relative_to(tmp_path).as_posix() for p in again.val_data.samples.image_path} == val


def test_the_volume_demo_tests_the_same_volumes_in_every_run(tmp_path: Path) -> None:
    """The volume demo's splits (calibration, validation/test halves) have a fixed seed on the command line too."""
    runs = {"volumes": ["--config", str(CONFIG_DIR / "synthetic_brain_volumes.yaml"), "--seed_everything", "3"]}
    result = _print_configs(runs, tmp_path)["volumes"]
    assert result["code"] == 0, result["stderr"]
    assert yaml.safe_load(result["stdout"])["data"]["init_args"]["seed"] == 0
