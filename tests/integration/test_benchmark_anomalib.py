"""`anomalib benchmark` with the committed config: EA2D, PatchCore and Reverse Distillation in one CSV.

anomalib's benchmark pipeline swallows errors and exits 0 (failures only reach runs/pipeline.log), so
this test checks what the run must produce: one results.csv with a row per model and finite metrics.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from anomalib_ea2d.data import SyntheticBrainMRI

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "configs" / "benchmark" / "anomalib_benchmark.yaml"
METRICS = ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score")

pytestmark = pytest.mark.slow


def _anomalib_cli() -> str:
    script = Path(sys.executable).with_name("anomalib")
    return str(script) if script.is_file() else shutil.which("anomalib") or "anomalib"


def test_committed_config_names_three_models_with_shared_init_args() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    models = config["benchmark"]["model"]["class_path"]["grid"]
    assert models == ["EA2DAnomalibMetrics", "Patchcore", "ReverseDistillation"]
    assert set(config["benchmark"]["model"]["init_args"]) == {"backbone", "pre_trained"}


def test_anomalib_benchmark_writes_a_row_per_model(tmp_path: Path) -> None:
    data_root = tmp_path / "brain"
    SyntheticBrainMRI(
        root=data_root, image_size=64, num_train=8, num_test_normal=4, num_test_abnormal=4, num_workers=0
    ).prepare_data()
    config = yaml.safe_load(CONFIG.read_text())
    data_args = config["benchmark"]["data"]["init_args"]
    data_args.update(root=str(data_root), train_batch_size=4, eval_batch_size=4, num_workers=0)
    config_path = tmp_path / "benchmark.yaml"
    config_path.write_text(yaml.safe_dump(config))

    env = {**os.environ, "PL_TRAINER_MAX_STEPS": "2", "CUDA_VISIBLE_DEVICES": ""}
    completed = subprocess.run(
        [_anomalib_cli(), "benchmark", "--config", str(config_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = tmp_path / "runs" / "pipeline.log"
    log_text = log.read_text() if log.is_file() else ""
    details = f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}\nlog:\n{log_text[-3000:]}"
    assert completed.returncode == 0, details
    assert "Traceback" not in log_text, details
    results = sorted((tmp_path / "runs" / "benchmark").glob("*/results.csv"))
    assert len(results) == 1, details
    table = pd.read_csv(results[0])
    assert sorted(table["model.class_path"]) == ["EA2DAnomalibMetrics", "Patchcore", "ReverseDistillation"]
    for metric in METRICS:
        values = pd.to_numeric(table[metric], errors="coerce")
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), (metric, table[metric].tolist())
    assert (table["fit_duration"] > 0).all()
