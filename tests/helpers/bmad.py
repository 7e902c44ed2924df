"""A tiny fake BMAD layout (anomalib.data.BMAD, category Brain): 64 px grayscale PNGs and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COUNTS = {"train": {"good": 8}, "valid": {"good": 2, "Ungood": 2}, "test": {"good": 2, "Ungood": 2}}


def make_fake_bmad(root: Path, category: str = "Brain", size: int = 64, seed: int = 0) -> Path:
    """Write ``root/<category>/{train/good, valid|test/{good,Ungood}/{img,label}}`` and return ``root``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for split, labels in COUNTS.items():
        for label, count in labels.items():
            folder = root / category / split / label
            image_dir = folder if split == "train" else folder / "img"
            image_dir.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                image = 100 + 40 * np.sin(8 * xx + rng.uniform(0, 6)) * np.cos(6 * yy) + rng.normal(0, 4, (size, size))
                mask = np.zeros((size, size), np.uint8)
                if label == "Ungood":
                    top, left = rng.integers(8, size - 24, 2)
                    mask[top : top + 12, left : left + 12] = 255
                    image[mask > 0] = 240
                Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(image_dir / f"{index:03d}.png")
                if split != "train" and label == "Ungood":
                    (folder / "label").mkdir(exist_ok=True)
                    Image.fromarray(mask).save(folder / "label" / f"{index:03d}.png")
    return root
