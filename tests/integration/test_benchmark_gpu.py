"""The ``gpu`` study of ``python -m anomalib_ea2d.pipelines.benchmark`` runs end to end; here on CPU at the smoke size.

It must also run where anomalib is not installed (a bare GPU machine): the second case hides anomalib
from the interpreter, so the study's stand-in for ``anomalib.data.InferenceBatch`` is what it uses.
"""

from __future__ import annotations

import json
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
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert ("stand-in" in completed.stderr) is not anomalib_installed
    results = json.loads((tmp_path / "gpu.json").read_text())
    assert (results["device"], results["backbone"], results["size"], results["batch"]) == ("cpu", "resnet18", 64, 2)
    timed = {key: value for key, value in results.items() if key.startswith(("train_step", "eval_"))}
    expected = {"train_step_fp32", "train_step_bf16_autocast"}
    expected |= {f"eval_b{b}_{p}{m}" for b in (1, 2) for p in ("fp32", "bf16_autocast") for m in ("", "_plain_modules")}
    assert set(timed) == expected
    for summary in timed.values():
        assert 0 < summary["min_ms"] <= summary["median_ms"] <= summary["max_ms"]
        assert summary["images_per_s"] > 0
    assert "| eval_b2_fp32_plain_modules |" in (tmp_path / "report.md").read_text()
