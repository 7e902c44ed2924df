"""``benchmarks/gpu_check.py`` (the GPU timing script) runs end to end; here on CPU at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_timing_script_writes_every_measurement(tmp_path: Path) -> None:
    output = tmp_path / "gpu.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--backbone", "resnet18"]
    command += ["--size", "64", "--batch", "2", "--steps", "2", "--output", str(output)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    results = json.loads(output.read_text())
    assert (results["device"], results["backbone"], results["size"], results["batch"]) == ("cpu", "resnet18", 64, 2)
    timed = {key: value for key, value in results.items() if key.startswith(("train_step", "eval_"))}
    expected = {"train_step_fp32", "train_step_bf16_autocast"}
    expected |= {f"eval_b{b}_{p}{m}" for b in (1, 2) for p in ("fp32", "bf16_autocast") for m in ("", "_plain_modules")}
    assert set(timed) == expected
    for summary in timed.values():
        assert 0 < summary["min_ms"] <= summary["median_ms"] <= summary["max_ms"]
        assert summary["images_per_s"] > 0
