"""Benchmark presets and goal thresholds are read from the YAML files of configs/benchmark/, and nowhere else."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from anomalib_ea2d.pipelines.benchmark.config import PRESET_DIR, GoalThresholds, load_preset
from anomalib_ea2d.pipelines.benchmark.goals import goal_checks


@pytest.fixture
def preset_copy(tmp_path: Path) -> Path:
    """A copy of the smoke preset and the thresholds file it includes, to edit."""
    for name in ("smoke.yaml", "goal_thresholds.yaml"):
        shutil.copy(PRESET_DIR / name, tmp_path / name)
    return tmp_path / "smoke.yaml"


def _edit(path: Path, change: dict) -> None:
    content = yaml.safe_load(path.read_text())
    for dotted, value in change.items():
        *parents, key = dotted.split(".")
        node = content
        for parent in parents:
            node = node[parent]
        node[key] = value
    path.write_text(yaml.safe_dump(content))


def test_named_preset_is_the_file_in_configs(preset_copy: Path) -> None:
    assert load_preset("smoke") == load_preset(preset_copy)
    assert load_preset("full")["scaling"].sizes == tuple(
        yaml.safe_load((PRESET_DIR / "full.yaml").read_text())["scaling"]["sizes"]
    )


def test_changed_yaml_values_change_the_preset(preset_copy: Path) -> None:
    before = load_preset(preset_copy)
    _edit(preset_copy, {"compare.train_steps": before["compare"].train_steps + 5, "gpu.batch": 3})
    _edit(preset_copy.with_name("goal_thresholds.yaml"), {"max_ea2d_over_rd": 0.5})
    after = load_preset(preset_copy, data_root=preset_copy.parent / "brain")
    assert after["compare"].train_steps == before["compare"].train_steps + 5
    assert after["gpu"].batch == 3
    assert after["goals"].thresholds.max_ea2d_over_rd == 0.5
    assert after["goals"].thresholds.min_openvino_fp32_speedup == before["goals"].thresholds.min_openvino_fp32_speedup
    assert {after[study].data.root for study in ("compare", "goals", "ablation")} == {preset_copy.parent / "brain"}
    assert after["goals"].calibration.root is None


def test_goal_verdicts_follow_the_thresholds() -> None:
    measured = {
        "ea2d_over_rd": 1.2,
        "ea2d_plain_over_rd": 1.7,
        "time_per_flop_over_rd": 0.7,
        "plain_time_per_flop_over_rd": 1.05,
        "fraction_of_peak": {"openvino_fp32": 0.6},
        "gflops": {"openvino_fp32": 60.0},
        "peak_gflops": 100.0,
        "openvino_fp32_speedup": 1.3,
        "openvino_int8_speedup": 5.0,
        "lightning_over_plain": 1.0,
        "train_backbone": "resnet18",
        "train_image_size": 64,
        "train_batch_size": 4,
        "lightning_step_ms": 10.0,
        "plain_step_ms": 10.0,
    }
    loose = GoalThresholds(
        max_ea2d_over_rd=1.25,
        max_time_per_flop_over_rd=0.75,
        max_plain_time_per_flop_over_rd=1.0,
        min_openvino_fp32_fraction_of_peak=0.8,
        min_openvino_fp32_speedup=1.5,
        min_openvino_int8_speedup=2.5,
        max_lightning_over_plain=1.1,
    )
    tight = dataclasses.replace(
        loose,
        max_ea2d_over_rd=1.1,
        max_time_per_flop_over_rd=0.6,
        max_plain_time_per_flop_over_rd=1.1,
        min_openvino_fp32_fraction_of_peak=0.5,
        min_openvino_fp32_speedup=1.2,
    )
    assert {key: met for key, _, _, met in goal_checks(measured, loose)} == {
        "ea2d_over_rd <= 1.25": True,
        "time_per_flop_over_rd <= 0.75": True,
        "plain_time_per_flop_over_rd <= 1": False,
        "openvino_fp32_fraction_of_peak >= 0.8": False,
        "openvino_fp32_speedup >= 1.5": False,
        "openvino_int8_speedup >= 2.5": True,
        "lightning_over_plain <= 1.1": True,
    }
    assert [met for *_, met in goal_checks(measured, tight)] == [False, False, True, True, True, True, True]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"compare.bogus": 1}, "bogus"),
        ({"compare.backends": ["tensorrt"]}, "backends"),
        ({"gpu.steps": "many"}, "steps"),
        ({"compare.seeds": []}, "compare.seeds is empty"),
        ({"compare.models": ["ea2d", "efficientad"]}, "models"),
    ],
)
def test_invalid_preset_names_the_field(preset_copy: Path, change: dict, message: str) -> None:
    _edit(preset_copy, change)
    with pytest.raises(ValueError, match=rf"Benchmark preset .*smoke.yaml is invalid: .*{message}"):
        load_preset(preset_copy)


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(FileNotFoundError, match=r"Benchmark preset 'huge' not found .* pass 'full', 'smoke'"):
        load_preset("huge")
