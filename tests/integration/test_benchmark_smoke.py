"""Smoke-sized runs of ``python -m anomalib_ea2d.pipelines.benchmark``: each study runs end to end, with its files."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest

from anomalib_ea2d.pipelines.benchmark import METRIC_KEYS, backends, load_preset, main, run_ablation, run_compare
from anomalib_ea2d.pipelines.benchmark.compare import VARIANTS, report_file
from anomalib_ea2d.pipelines.benchmark.metrics import MEDICAL_KEYS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data_root = tmp_path_factory.mktemp("brain")
    return load_preset("smoke", data_root)


def _table_line(text: str, model: str, backend: str) -> list[str]:
    """The cells of the inference table's row of ``model`` in ``backend`` in ``compare.md``."""
    lines = [line for line in text.splitlines() if line.startswith(f"| {model} | {backend} |")]
    assert len(lines) == 1, lines
    return [cell.strip() for cell in lines[0].strip("|").split("|")]


EXPORT_FAILURE = "simulated export failure"


def test_compare_writes_a_row_per_model_seed_and_variant(smoke: dict, tmp_path: Path) -> None:
    config = dataclasses.replace(
        smoke["compare"], models=("ea2d", "patchcore"), seeds=(0, 1), backends=("torch", "openvino-fp32")
    )
    rows = run_compare(config, tmp_path, isolate=False)
    table = pd.read_csv(tmp_path / "compare.csv")
    expected = [(model, seed, variant) for seed in (0, 1) for model in ("ea2d", "patchcore") for variant in VARIANTS]
    assert list(zip(table["model"], table["seed"], table["variant"], strict=True)) == expected
    for key in (*METRIC_KEYS, *MEDICAL_KEYS):
        assert table[key].map(math.isfinite).all(), key
    timed = table[(table["seed"] == 0) & (table["variant"] == "anomalib")]
    for key in ("torch_image_AUROC", "openvino-fp32_image_AUROC", "fit_s", "step_ms"):
        assert timed[key].map(math.isfinite).all(), key
    for backend in config.backends:
        for size in config.batch_sizes:
            assert (timed[f"{backend}_b{size}_ips"] > 0).all()
    # Only the first seed's models are timed.
    assert table[table["seed"] == 1]["torch_b1_ips"].isna().all()
    for row in rows:
        if "torch_image_AUROC" not in row:
            continue
        # The benchmark's own scoring of the torch outputs agrees with anomalib's Engine.test.
        assert row["torch_image_AUROC"] == pytest.approx(row["image_AUROC"], abs=1e-6)
        assert row["torch_pixel_AUROC"] == pytest.approx(row["pixel_AUROC"], abs=1e-4)
        # OpenVINO FP32 scores the same images almost identically.
        assert row["openvino-fp32_pixel_AUROC"] == pytest.approx(row["torch_pixel_AUROC"], abs=1e-3)
        assert row["openvino-fp32_size_mib"] > 0
    timings = pd.read_csv(tmp_path / "compare_timings.csv")
    assert len(timings) == len(config.models) * len(config.backends) * len(config.batch_sizes) * config.repeats
    text = (tmp_path / "compare.md").read_text()
    # Every export worked: no error column, no failure mark, and each back-end's row starts with its AUROC.
    assert not [column for column in table.columns if column.endswith("_error")]
    assert "failed" not in text
    for model in config.models:
        for backend in config.backends:
            assert math.isfinite(float(_table_line(text, model, backend)[2])), (model, backend)
    assert "| patchcore | roi+op |" in text
    assert " +- " in text  # mean +- std over the two seeds
    assert (tmp_path / "compare.png").stat().st_size > 0
    for row in rows:  # one run report per model, seed and variant, printing the logged image AUROC
        page = (tmp_path / "work" / f"{row['model']}_seed{row['seed']}" / report_file(row["variant"])).read_text()
        value = f"{row['image_AUROC']:.4f}"
        assert f"<td>image_AUROC</td><td class=num>{value}</td><td class=num>{value}</td>" in page


def test_compare_runs_uninet_from_random_weights_and_reports_a_failed_export(
    smoke: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_export(*args: object, **kwargs: object) -> Path:
        raise RuntimeError(EXPORT_FAILURE)

    monkeypatch.setattr(backends, "export_openvino", failing_export)
    config = dataclasses.replace(smoke["compare"], models=("uninet",), seeds=(0,), backends=("torch", "openvino-fp32"))
    rows = run_compare(config, tmp_path, isolate=False)
    assert [row["variant"] for row in rows] == list(VARIANTS)
    assert rows[0]["backbone"] == config.uninet_backbone
    assert all(math.isfinite(rows[0][key]) for key in (*METRIC_KEYS, *MEDICAL_KEYS))
    # The failed back-end is recorded with its reason, and neither scored nor timed ...
    error = f"RuntimeError: {EXPORT_FAILURE}"
    assert rows[0]["openvino-fp32_error"] == error
    assert not [key for key in rows[0] if key.startswith("openvino-fp32_") and key != "openvino-fp32_error"]
    table = pd.read_csv(tmp_path / "compare.csv")
    assert table.loc[table["variant"] == VARIANTS[0], "openvino-fp32_error"].tolist() == [error]
    text = (tmp_path / "compare.md").read_text()
    fp32 = _table_line(text, "uninet", "openvino-fp32")
    assert fp32[2] == f"failed (...{error})"
    assert set(fp32[3:]) == {"-"}
    # ... and the run went on: torch scored and timed, the roi+op variant tested, every file written.
    assert rows[0]["torch_b1_ips"] > 0
    assert math.isfinite(rows[0]["torch_image_AUROC"])
    torch_line = _table_line(text, "uninet", "torch")
    assert "failed" not in " ".join(torch_line)
    assert float(torch_line[2]) == pytest.approx(rows[0]["torch_image_AUROC"], abs=5e-4)
    assert set(pd.read_csv(tmp_path / "compare_timings.csv")["backend"]) == {"torch"}
    assert "| uninet | roi+op |" in text
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_scaling_through_the_command_line(smoke: dict, tmp_path: Path) -> None:
    assert main(["scaling", "--preset", "smoke", "--output", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "scaling.csv")
    config = smoke["scaling"]
    assert len(table) == len(config.sizes) + len(config.batches) - 1  # batch 1 at 64 px is shared
    assert (table["attention_ms"] > 0).all()
    assert (table["attention_share"] < 1).all()
    # Quadratic attention: its FLOP share grows with the input size.
    batch1 = table[table["batch"] == 1].sort_values("size")
    assert batch1["attention_flop_share"].is_monotonic_increasing
    assert "## scaling" in (tmp_path / "report.md").read_text()


def test_ablation_summary_has_mean_and_std(smoke: dict, tmp_path: Path) -> None:
    config = dataclasses.replace(smoke["ablation"], variants=("one_view",), seeds=(0, 1))
    rows = run_ablation(config, tmp_path)
    assert [row["seed"] for row in rows] == [0, 1]
    text = (tmp_path / "ablation.md").read_text()
    assert "| one_view |" in text
    assert "+-" in text
