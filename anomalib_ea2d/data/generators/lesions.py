"""Synthetic lesions of the 2-D brain slices: irregular soft-edged blobs painted into one slice of tissue.

:func:`_draw_lesions` is called by :func:`~anomalib_ea2d.data.generators.synthetic_brain.synthesize_subject`
for every slice of an abnormal subject, before contrast, bias field and noise, so the lesions are
imaged like the anatomy around them. Each lesion is an ellipse bent by smooth noise, hyper- or
hypo-intense, with texture and a soft edge, centred deep inside the brain and mostly in white
matter; its ground-truth mask is the half-strength contour. The lesions are a software test signal,
not a model of any disease (see :mod:`anomalib_ea2d.data.generators.synthetic_brain`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from anomalib_ea2d.data.generators.anatomy import FIELD_OF_VIEW_MM, _smooth_noise

if TYPE_CHECKING:
    from anomalib_ea2d.data.generators.synthetic_brain import SyntheticBrainParams


def _draw_lesions(
    rng: np.random.Generator,
    tissue: np.ndarray,
    brain: np.ndarray,
    wm: np.ndarray,
    params: SyntheticBrainParams,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint 1-3 lesions into one slice of tissue (white matter = 1); return it and the lesion mask."""
    size = tissue.shape[-1]
    spacing = FIELD_OF_VIEW_MM / size
    radii_px = np.asarray(params.lesion_radius_mm) / spacing
    count = int(rng.integers(params.lesions_per_image[0], params.lesions_per_image[1] + 1))
    depth = ndimage.distance_transform_edt(brain)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    out = tissue.copy()
    lesion_mask = np.zeros_like(brain)
    centres: list[tuple[float, float, float]] = []
    for _ in range(count):
        a, b = rng.uniform(radii_px[0], radii_px[1], size=2)
        radius = max(a, b)
        # Centres deep enough inside the brain, weighted towards white matter.
        allowed = depth > radius * 1.3 + 1
        if not allowed.any():
            allowed = depth >= depth.max()
        weights = np.where(allowed, wm**2 + 0.02, 0.0).ravel()
        for _attempt in range(20):
            index = int(rng.choice(weights.size, p=weights / weights.sum()))
            cy, cx = divmod(index, size)
            if all(math.hypot(cy - y, cx - x) > 0.8 * (radius + r) for y, x, r in centres):
                break
        centres.append((cy, cx, radius))

        theta = rng.uniform(0, math.pi)
        dy, dx = rows - cy, cols - cx
        u = (dx * math.cos(theta) + dy * math.sin(theta)) / a
        v = (-dx * math.sin(theta) + dy * math.cos(theta)) / b
        # Irregular outline: the elliptic distance bent by smooth noise of about a third of the lesion size.
        distance = np.hypot(u, v) - 0.3 * _smooth_noise(rng, (size, size), max(min(a, b) * 0.4, 0.7))
        # Soft edge: full strength inside 0.8, zero beyond 1.2, one half on the mask contour at 1.0.
        t = np.clip((1.2 - distance) / 0.4, 0.0, 1.0)
        alpha = t * t * (3 - 2 * t) * brain * rng.uniform(0.8, 1.0)
        hyper = wm[cy, cx] < 0.6 or rng.random() < 0.5
        level = rng.uniform(1.1, 1.3) if hyper else rng.uniform(0.35, 0.6)
        texture = 1.0 + rng.uniform(0.05, 0.1) * _smooth_noise(rng, (size, size), max(1.2 / spacing, 0.6))
        out = out * (1 - alpha) + alpha * level * texture
        lesion_mask |= (distance <= 1.0) & brain
    return out, lesion_mask
