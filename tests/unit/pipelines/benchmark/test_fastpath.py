"""The inference fast-path study: its variants compute EA2D's outputs, its report and its choice rule."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from anomalib_ea2d import EA2DModel
from anomalib_ea2d.pipelines.benchmark.builders import randomise_eval_state
from anomalib_ea2d.pipelines.benchmark.fastpath import (
    TOLERANCE,
    VARIANTS,
    build_variants,
    kept_variant,
    main,
)


@pytest.fixture(scope="module")
def model() -> EA2DModel:
    torch.manual_seed(0)
    return randomise_eval_state(EA2DModel(backbone="resnet18", pre_trained=False)).eval()


def test_every_variant_computes_the_models_eval_output(model: EA2DModel) -> None:
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(images)
        outputs = {name: call(images) for name, call in build_variants(model).items()}
    assert set(outputs) == set(VARIANTS)
    for anomaly_map, score in outputs.values():
        torch.testing.assert_close(anomaly_map, expected.anomaly_map, atol=TOLERANCE, rtol=0)
        torch.testing.assert_close(score, expected.pred_score, atol=TOLERANCE, rtol=0)


def _rows(ratios: dict[str, list[float]]) -> list[dict[str, object]]:
    return [
        {"variant": name, "ratio_to_fastest": ratio, "backbone": "resnet18", "image_size": 64, "batch": case}
        for name, values in ratios.items()
        for case, ratio in enumerate(values)
    ]


def test_kept_variant_is_the_simplest_within_five_percent_in_the_geometric_mean() -> None:
    names = list(VARIANTS)
    rows = _rows({names[0]: [1.5, 1.4], names[1]: [1.02, 1.06], names[2]: [1.0, 1.0], "conv1x1": [9.0, 9.0]})
    kept, means = kept_variant(rows)
    assert kept == names[1]
    assert means[names[1]] == pytest.approx((1.02 * 1.06) ** 0.5)
    assert "conv1x1" not in means
    assert kept_variant(_rows({names[0]: [1.2], names[-1]: [1.0]}))[0] == names[-1]


def test_command_line_writes_csv_and_markdown(tmp_path: Path) -> None:
    args = ["--out", str(tmp_path), "--backbones", "resnet18", "--sizes", "64", "--batches", "1", "--budget-s", "0"]
    assert main([*args, "--min-rounds", "1"]) == 0
    with (tmp_path / "fastpath.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["variant"] for row in rows] == [*VARIANTS, "sgemm", "conv1x1"]
    assert all(float(row["cpu_ms"]) > 0 and float(row["gflop_per_cpu_s"]) > 0 for row in rows)
    assert all(float(row["max_abs_diff_vs_plain"]) <= TOLERANCE for row in rows if row["variant"] in VARIANTS)
    report = (tmp_path / "fastpath.md").read_text()
    assert "| resnet18 | 64 | 1 |" in report
    assert "Simplest variant within 5 %" in report
