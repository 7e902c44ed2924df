"""The ``gpu`` study of ``python -m anomalib_ea2d.pipelines.benchmark`` runs end to end; here on CPU at the smoke size.

It must also run where anomalib is not installed (a bare GPU machine): the second case hides anomalib
from the interpreter, so the study's stand-in for ``anomalib.data.InferenceBatch`` is what it uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HIDE_ANOMALIB = """
import importlib.abc, sys
class HideAnomalib(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "anomalib" or name.startswith("anomalib."):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, HideAnomalib())
"""


@pytest.mark.parametrize("anomalib_installed", [True, False], ids=["with_anomalib", "without_anomalib"])
def test_gpu_study_writes_every_measurement(tmp_path: Path, anomalib_installed: bool) -> None:
    run = "from anomalib_ea2d.pipelines.benchmark.cli import main; sys.exit(main(sys.argv[1:]))"
    code = "import sys\n" + ("" if anomalib_installed else HIDE_ANOMALIB) + run
    command = [sys.executable, "-c", code, "gpu", "--preset", "smoke", "--output", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two spinning threads on a loaded 2-core machine: 10x slower
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert ("stand-in" in completed.stderr) is not anomalib_installed
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert (results["device"], results["backbone"], results["size"], results["batch"]) == ("cpu", "resnet18", 64, 2)
    timed = {key: value for key, value in results.items() if key.startswith(("train_step", "eval_"))}
    ladder = ("fp32", "bf16_autocast", "bf16_autocast_channels_last", "bf16_autocast_channels_last_compiled")
    expected = {f"train_step_{variant}" for variant in ladder}
    expected |= {f"eval_b{b}_{p}{m}" for b in (1, 2) for p in ("fp32", "bf16_autocast") for m in ("", "_plain_modules")}
    assert set(timed) == expected
    peaks = results["peak_tflops"]
    assert peaks["fp32"] == pytest.approx(max(results["peak_kernels_tflops"][f"fp32_{k}"] for k in KERNELS))
    assert peaks["bf16"] == pytest.approx(max(results["peak_kernels_tflops"][f"bf16_{k}"] for k in KERNELS))
    for key, summary in timed.items():
        assert 0 < summary["min_ms"] <= summary["median_ms"] <= summary["max_ms"]
        assert summary["images_per_s"] == pytest.approx(_batch(key) / (summary["median_ms"] / 1e3), rel=5e-3)
        assert summary["tflops"] > 0
        precision = "bf16" if "bf16" in key else "fp32"
        assert summary["fraction_of_peak"] == pytest.approx(summary["tflops"] / peaks[precision])
    # A training step does forward and backward: more FLOPs per image than eval, the same in every variant.
    step_flops = {key: s["tflops"] * s["median_ms"] for key, s in timed.items() if key.startswith("train_step")}
    assert max(step_flops.values()) == pytest.approx(min(step_flops.values()), rel=1e-6)
    eval_flops = timed["eval_b2_fp32"]["tflops"] * timed["eval_b2_fp32"]["median_ms"]
    assert next(iter(step_flops.values())) > 2 * eval_flops
    report = (tmp_path / "report.md").read_text()
    assert "| eval_b2_fp32_plain_modules |" in report
    assert "| train_step_bf16_autocast_channels_last_compiled |" in report


KERNELS = ("gemm", "conv1x1")


def _batch(key: str) -> int:
    return 1 if key.startswith("eval_b1_") else 2
