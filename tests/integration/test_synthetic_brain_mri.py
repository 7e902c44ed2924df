"""SyntheticBrainMRI (``data.synthetic_brain_mri``) with anomalib's Engine and CLI: tiny EA2D fit/test, demo config."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anomalib_ea2d import EA2D
from tests.helpers.engine import cpu_engine
from tests.helpers.recorder import TestRecorder
from tests.helpers.tiny_data import tiny_synthetic_brain, tiny_synthetic_brain_cli

SIZE = 64
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "synthetic_brain.yaml"


@pytest.fixture(scope="module")
def brain_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "brain"
    tiny_synthetic_brain(root, SIZE).prepare_data()
    return root


def test_engine_fit_and_test(brain_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE)
    engine = cpu_engine(tmp_path, max_steps=2, check_val_every_n_epoch=None, val_check_interval=2)
    datamodule = tiny_synthetic_brain(brain_root, SIZE)
    engine.fit(model=model, datamodule=datamodule)
    assert engine.trainer.global_step == 2
    # The final validation calibrated the thresholds (they start as NaN).
    assert not math.isnan(float(model.post_processor.image_threshold))
    recorder = TestRecorder()
    tester = cpu_engine(tmp_path / "test", callbacks=[recorder])
    (results,) = tester.test(model=model, datamodule=datamodule)
    assert results["image_AUROC"] == pytest.approx(recorder.image_auroc(), abs=1e-6)
    assert results["pixel_AUROC"] == pytest.approx(recorder.pixel_auroc(), abs=1e-5)
    assert 0.0 <= results["pixel_PRO"] <= 1.0


def test_demo_config_runs_from_the_cli(brain_root: Path, tmp_path: Path) -> None:
    """``anomalib train --config configs/synthetic_brain.yaml``, shrunk to 2 steps at 64 px."""
    command = [
        sys.executable,
        "-c",
        "import sys; from anomalib.cli.cli import main; sys.argv[0] = 'anomalib'; sys.exit(main())",
        "train",
        "--config",
        str(CONFIG),
        *tiny_synthetic_brain_cli(brain_root, SIZE),
        "--model.init_args.image_size",
        str(SIZE),
        "--model.init_args.max_steps",
        "2",
        "--model.init_args.pre_trained",
        "false",  # offline machines; the config asks for ImageNet weights
        "--trainer.val_check_interval",
        "2",
        "--trainer.callbacks.steps",  # the config's in-domain pretraining phase (random encoder), shrunk too
        "2",
        "--trainer.accelerator",
        "cpu",
        "--trainer.enable_progress_bar",
        "false",
        "--default_root_dir",
        str(tmp_path),
    ]
    env = {**os.environ, "COLUMNS": "300"}  # one log record per line
    process = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)
    output = process.stdout + process.stderr
    assert process.returncode == 0, output[-4000:]
    assert "pixel_AUROC" in output
    assert "EncoderPretraining: learning the encoder from the training images (2 steps" in output
    assert list(tmp_path.rglob("*.ckpt")), "no checkpoint written"
