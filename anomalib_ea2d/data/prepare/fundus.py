"""Image processing of colour fundus photos: the crop that the APTOS 2019 split applies to every photo.

The crop is kept apart from the split logic so that inference on new photos can apply the same
processing (``crop_fundus(Image.open(path))``) as the prepared training set.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def crop_fundus(image: Image.Image, size: int = 512, margin: int = 5, threshold: int = 10) -> Image.Image:
    """Crop a fundus photo to the square around its largest bright region and resize it.

    The foreground is every pixel whose grey value exceeds ``threshold``; the square is centred on
    the bounding box of the largest connected foreground region, its side is the box's longer side
    plus ``margin`` pixels on each side, and parts outside the photo are filled with black.

    Args:
        image: The photo.
        size: Output side in pixels.
        margin: Margin around the region in (original) pixels.
        threshold: Grey level (0-255) above which a pixel is foreground.

    Returns:
        The ``size`` x ``size`` RGB crop.

    Example:
        >>> from PIL import Image, ImageDraw
        >>> photo = Image.new("RGB", (300, 200))
        >>> ImageDraw.Draw(photo).ellipse((100, 50, 200, 150), fill=(200, 80, 40))
        >>> crop_fundus(photo, size=64).size
        (64, 64)
    """
    rgb = image.convert("RGB")
    foreground = np.asarray(rgb.convert("L")) > threshold
    labels, count = ndimage.label(foreground)
    if count == 0:
        msg = f"crop_fundus: the image has no pixel brighter than {threshold}; it cannot be a fundus photo."
        raise ValueError(msg)
    largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    rows, cols = ndimage.find_objects((labels == largest).astype(np.int32))[0]
    side = max(rows.stop - rows.start, cols.stop - cols.start) + 2 * margin
    centre_row = (rows.start + rows.stop) / 2
    centre_col = (cols.start + cols.stop) / 2
    top = round(centre_row - side / 2)
    left = round(centre_col - side / 2)
    # PIL pads regions outside the image with black.
    square = rgb.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.Resampling.LANCZOS)
