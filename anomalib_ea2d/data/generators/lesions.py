"""Synthetic lesions of the brain generators: irregular soft-edged blobs painted into tissue, in 2-D and 3-D.

:func:`draw_lesions` paints one slice of an abnormal subject of the slice generator
(:func:`~anomalib_ea2d.data.generators.synthetic_brain.synthesize_subject`), :func:`draw_lesions_3d`
a whole abnormal volume of the volume generator
(:func:`~anomalib_ea2d.data.generators.synthetic_brain_volumes.synthesize_volume`); both before
contrast, bias field and noise, so the lesions are imaged like the anatomy around them. Each lesion
is an ellipse (ellipsoid) bent by smooth noise, hyper- or hypo-intense, with texture and a soft edge,
centred deep inside the brain and mostly in white matter; its ground-truth mask is the half-strength
contour. Both painters place and shape their lesions, then :func:`paint_lesion` draws each one.

The lesions are a software test signal, not a model of any disease (see
:mod:`anomalib_ea2d.data.generators.synthetic_brain`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from anomalib_ea2d.data.generators.anatomy import FIELD_OF_VIEW_MM, rotation, smooth_noise


def paint_lesion(
    rng: np.random.Generator,
    tissue: np.ndarray,
    distance: np.ndarray,
    brain: np.ndarray,
    wm_at_centre: float,
    outline_sigma: float,
    spacing: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint one lesion into ``tissue`` (white matter = 1); return the painted tissue and the lesion's mask.

    Args:
        rng: Random stream of the subject (drawn from in a fixed order).
        tissue: Tissue intensities around the lesion (a slice, or a box of a volume).
        distance: Elliptic distance from the lesion's centre (1 on the ellipse), same shape.
        brain: Boolean brain mask, same shape.
        wm_at_centre: White-matter probability at the centre; below 0.6 the lesion is hyper-intense.
        outline_sigma: Smoothness, in pixels, of the noise that bends the outline.
        spacing: Pixel size in millimetres (the texture's grain is about 1.2 mm).
    """
    # Irregular outline: the elliptic distance bent by smooth noise of about a third of the lesion size.
    distance = distance - 0.3 * smooth_noise(rng, distance.shape, outline_sigma)
    # Soft edge: full strength inside 0.8, zero beyond 1.2, one half on the mask contour at 1.0.
    t = np.clip((1.2 - distance) / 0.4, 0.0, 1.0)
    alpha = t * t * (3 - 2 * t) * brain * rng.uniform(0.8, 1.0)
    hyper = wm_at_centre < 0.6 or rng.random() < 0.5
    level = rng.uniform(1.1, 1.3) if hyper else rng.uniform(0.35, 0.6)
    texture = 1.0 + rng.uniform(0.05, 0.1) * smooth_noise(rng, distance.shape, max(1.2 / spacing, 0.6))
    return tissue * (1 - alpha) + alpha * level * texture, (distance <= 1.0) & brain


def draw_lesions(
    rng: np.random.Generator,
    tissue: np.ndarray,
    brain: np.ndarray,
    wm: np.ndarray,
    count: tuple[int, int],
    radius_mm: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Paint ``count`` (inclusive range) lesions into one slice of tissue; return it and the lesion mask.

    Args:
        rng: Random stream of the subject.
        tissue: ``(S, S)`` tissue intensities (white matter = 1).
        brain: ``(S, S)`` boolean brain mask.
        wm: ``(S, S)`` white-matter probability.
        count: Inclusive range of the number of lesions.
        radius_mm: Range of the lesions' semi-axes in millimetres.
    """
    size = tissue.shape[-1]
    spacing = FIELD_OF_VIEW_MM / size
    radii_px = np.asarray(radius_mm) / spacing
    number = int(rng.integers(count[0], count[1] + 1))
    depth = ndimage.distance_transform_edt(brain)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    out = tissue.copy()
    lesion_mask = np.zeros_like(brain)
    centres: list[tuple[float, float, float]] = []
    for _ in range(number):
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
        outline_sigma = max(min(a, b) * 0.4, 0.7)
        out, mask = paint_lesion(rng, out, np.hypot(u, v), brain, wm[cy, cx], outline_sigma, spacing)
        lesion_mask |= mask
    return out, lesion_mask


def draw_lesions_3d(
    rng: np.random.Generator,
    tissue: np.ndarray,
    brain: np.ndarray,
    wm: np.ndarray,
    count: tuple[int, int],
    radius_mm: tuple[float, float],
    spacing: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Paint ``count`` (inclusive range) 3-D lesions into a volume of tissue; return it and the lesion mask.

    Args:
        rng: Random stream of the subject.
        tissue: Tissue intensities of the volume (white matter = 1).
        brain: Boolean brain mask, same shape.
        wm: White-matter probability, same shape.
        count: Inclusive range of the number of lesions.
        radius_mm: Range of the lesions' semi-axes in millimetres.
        spacing: Isotropic voxel size in millimetres.
    """
    out, mask = tissue.copy(), np.zeros(brain.shape, bool)
    depth = ndimage.distance_transform_edt(brain) * spacing
    number = int(rng.integers(count[0], count[1] + 1))
    for _ in range(number):
        axes_mm = rng.uniform(*radius_mm, size=3)
        allowed = depth > axes_mm.max() * 1.3 + spacing
        if not allowed.any():
            allowed = depth >= depth.max()
        weights = np.where(allowed, wm**2 + 0.02, 0.0).ravel()
        centre = np.array(np.unravel_index(int(rng.choice(weights.size, p=weights / weights.sum())), brain.shape))
        reach = math.ceil(axes_mm.max() * 1.6 / spacing) + 1
        low, high = np.maximum(centre - reach, 0), np.minimum(centre + reach + 1, brain.shape)
        box = tuple(slice(a, b) for a, b in zip(low, high, strict=True))
        offsets = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(low, high, strict=True)], indexing="ij"))
        offsets = (offsets - centre[:, None, None, None]).reshape(3, -1) * spacing
        local = rotation(*rng.uniform(0, math.pi, size=3)).T @ offsets
        distance = np.sqrt(((local / axes_mm[:, None]) ** 2).sum(0)).reshape(high - low)
        outline_sigma = max(axes_mm.min() * 0.4 / spacing, 0.7)
        out[box], painted = paint_lesion(rng, out[box], distance, brain[box], wm[tuple(centre)], outline_sigma, spacing)
        mask[box] |= painted
    return out, mask


__all__ = ["draw_lesions", "draw_lesions_3d", "paint_lesion"]
