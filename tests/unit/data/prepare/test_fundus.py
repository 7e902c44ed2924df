"""Fundus crop (``anomalib_ea2d.data.prepare.fundus``): square around the largest bright region, black padding."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from anomalib_ea2d.data.prepare.fundus import crop_fundus


def test_crop_fundus_boxes_the_largest_region() -> None:
    photo = Image.new("RGB", (200, 120))
    draw = ImageDraw.Draw(photo)
    draw.ellipse((50, 20, 129, 99), fill=(200, 100, 50))  # the fundus: 80 x 80 box at rows 20-99, cols 50-129
    draw.rectangle((185, 3, 188, 6), fill=(255, 255, 255))  # a bright speck, smaller: ignored
    side = 80 + 2 * 5
    crop = np.asarray(crop_fundus(photo, size=side, margin=5))
    expected = np.asarray(photo.crop((45, 15, 45 + side, 15 + side)))
    assert np.array_equal(crop, expected)
    # Boxes reaching past the border are padded with black.
    edge = Image.new("RGB", (100, 60))
    ImageDraw.Draw(edge).ellipse((0, 0, 59, 59), fill=(200, 100, 50))
    padded = np.asarray(crop_fundus(edge, size=70, margin=5))
    assert padded.shape == (70, 70, 3)
    assert padded[:5].max() == 0
    with pytest.raises(ValueError, match="no pixel brighter"):
        crop_fundus(Image.new("RGB", (20, 20)))
