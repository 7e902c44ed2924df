"""``anomalib predict`` speed: images per second of ``Engine.predict`` on a folder of image files.

``anomalib predict --model M --data FOLDER --ckpt_path C`` ends in ``Engine.predict(model,
data_path=FOLDER)``: anomalib's ``PredictDataset`` loader (one image per batch), the model's
pre-processing, network (for EA2D its ``inference_path``), post-processing and visualiser (one PNG
per image written under the run's folder). Here that same call is timed on models built in this
process, so process start-up and checkpoint loading are left out; each model is calibrated first
by one untimed ``Engine.validate`` (as training would have done) and warmed up by predicting one
image. The models are timed in alternation, ``rounds`` times each.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from anomalib.engine import Engine
from anomalib.models import AnomalibModule
from PIL import Image

WARMUP_FOLDER = "warmup"
IMAGES_FOLDER = "images"


def write_predict_images(root: Path, count: int, size: int, seed: int = 0) -> Path:
    """``count`` 8-bit RGB PNG textures of ``size`` px under ``root/images`` (and one under ``root/warmup``).

    Example:
        >>> import tempfile
        >>> folder = write_predict_images(Path(tempfile.mkdtemp()), count=2, size=32)
        >>> sorted(path.name for path in folder.iterdir())
        ['000.png', '001.png']
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for folder, number in ((WARMUP_FOLDER, 1), (IMAGES_FOLDER, count)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for index in range(number):
            phase = rng.uniform(0, 2 * np.pi, 2)
            image = 128 + 60 * np.sin(9 * xx + phase[0]) * np.cos(7 * yy + phase[1]) + rng.normal(0, 8, (size, size))
            rgb = np.repeat(image.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
            Image.fromarray(rgb).save(root / folder / f"{index:03d}.png")
    return root / IMAGES_FOLDER


def _engine(root: Path) -> Engine:
    return Engine(
        default_root_dir=str(root),
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def calibrate(module: AnomalibModule, datamodule: Any, root: Path) -> None:  # noqa: ANN401
    """Fit ``module``'s post-processing (normalisation, thresholds) by one validation on ``datamodule``."""
    _engine(root).validate(model=module, datamodule=datamodule, verbose=False)


def predict_seconds(
    modules: dict[str, AnomalibModule], folder: Path, rounds: int, root: Path
) -> dict[str, list[float]]:
    """Wall seconds of ``Engine.predict(model, data_path=folder)`` per model, ``rounds`` times, in alternation.

    Args:
        modules: Calibrated anomalib modules by name.
        folder: The image folder (from :func:`write_predict_images`; its sibling ``warmup`` folder warms up).
        rounds: Timed runs per model.
        root: Folder of the runs' outputs (visualisations), one sub-folder per model.
    """
    for name, module in modules.items():
        _engine(root / name).predict(model=module, data_path=folder.parent / WARMUP_FOLDER)
    seconds: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(rounds):
        for name, module in modules.items():
            engine = _engine(root / name)
            start = time.perf_counter()
            engine.predict(model=module, data_path=folder)
            seconds[name].append(time.perf_counter() - start)
    return seconds


__all__ = ["calibrate", "predict_seconds", "write_predict_images"]
