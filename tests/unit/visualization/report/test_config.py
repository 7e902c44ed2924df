"""The volume demo config turns the run report on (the slice demo adds it in code: tests/integration/test_demo.py)."""

from __future__ import annotations

import yaml

from anomalib_ea2d.config_files import config_dir


def test_volume_demo_config_writes_the_run_report() -> None:
    config = yaml.safe_load((config_dir() / "synthetic_brain_volumes.yaml").read_text())
    paths = [callback["class_path"] for callback in config["trainer"]["callbacks"]]
    assert "anomalib_ea2d.RunReport" in paths
