"""16-bit grayscale PNGs for the tests of the medical-image reader and the datamodules built on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_png16(path: Path, values: np.ndarray) -> Path:
    """Save ``values`` (any numeric array, clipped to ``[0, 65535]``) as a 16-bit grayscale PNG at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values).clip(0, 65535).astype(np.uint16)).save(path)
    return path
