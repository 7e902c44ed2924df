"""The encoder study takes its pretraining phase from the demo config, as the demo runs it."""

from __future__ import annotations

from pathlib import Path

import yaml

from anomalib_ea2d.demo import DEFAULT_CONFIG, parse_config
from anomalib_ea2d.pipelines.benchmark.encoder import demo_pretraining


def _config_with_phase(tmp_path: Path, **init_args: object) -> Path:
    """The demo config with its EncoderPretraining entry's init args replaced, beside its data config."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    entries = config["trainer"]["callbacks"]
    phase = next(e for e in entries if e["class_path"].endswith("EncoderPretraining"))
    phase["init_args"] = init_args
    config["data"] = str(DEFAULT_CONFIG.parent / config["data"])
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_study_runs_the_phase_the_demo_config_sets(tmp_path: Path) -> None:
    demo = parse_config(_config_with_phase(tmp_path, steps=7, freeze_encoder=True, learning_rate=0.002))
    phase = demo_pretraining(demo, None, tmp_path / "encoder.pth")
    assert (phase.steps, phase.freeze_encoder, phase.learning_rate) == (7, True, 0.002)
    assert phase.save_path == tmp_path / "encoder.pth"


def test_the_study_overrides_steps_and_objective_only(tmp_path: Path) -> None:
    demo = parse_config(_config_with_phase(tmp_path, steps=7, freeze_encoder=True))
    phase = demo_pretraining(demo, 3, tmp_path / "encoder.pth", objective="simsiam")
    assert (phase.steps, phase.objective, phase.freeze_encoder) == (3, "simsiam", True)


def test_the_committed_demo_config_is_read() -> None:
    committed = yaml.safe_load(DEFAULT_CONFIG.read_text())
    entry = next(e for e in committed["trainer"]["callbacks"] if e["class_path"].endswith("EncoderPretraining"))
    phase = demo_pretraining(parse_config(DEFAULT_CONFIG), None, Path("encoder.pth"))
    for key, value in (entry.get("init_args") or {}).items():
        assert getattr(phase, key) == value, key
