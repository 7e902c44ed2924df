"""Anatomy of the synthetic brain generators: the MNI152 template and the deformation of each simulated subject.

Shared by the 2-D slice generator (:mod:`anomalib_ea2d.data.generators.synthetic_brain`) and the volume
generator (:mod:`anomalib_ea2d.data.generators.synthetic_brain_volumes`): :func:`load_atlas` loads the MNI152
2009 T1 template, brain mask and white-matter map shipped inside the ``nilearn`` wheel (nothing is
downloaded), cropped to the axial slab the images come from; :func:`sampling_coordinates` maps
every output pixel into the template through a subject's random affine transform and smooth elastic
displacement; :func:`rotation` and :func:`smooth_noise` are the small helpers both generators and
their lesion painters use. Every random draw comes from the ``rng`` passed in, in a fixed order, so
a subject's anatomy depends only on its random stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

FIELD_OF_VIEW_MM = 210.0
"""Side of the square field of view of every slice, centred on the brain."""


@dataclass
class Atlas:
    """The template volumes, cropped to the axial slab the slices come from."""

    t1_coeffs: np.ndarray  # cubic-spline coefficients of the masked T1 crop
    mask: np.ndarray
    wm: np.ndarray
    centre: np.ndarray  # brain bounding-box centre, in crop voxel coordinates (x, y, z)
    z_limits: tuple[float, float]  # lowest and highest brain voxel (crop coordinates)


@lru_cache(maxsize=2)
def load_atlas(slice_range: tuple[float, float]) -> Atlas:
    """The MNI152 template, brain mask and white-matter map, cropped to the axial ``slice_range`` of the brain."""
    from nilearn import datasets  # noqa: PLC0415 - heavy import, only needed when generating

    t1 = np.asarray(datasets.load_mni152_template(resolution=1).get_fdata(dtype=np.float32))
    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32))
    wm = np.asarray(datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32))
    brain_voxels = np.argwhere(mask > 0)
    low, high = brain_voxels.min(axis=0), brain_voxels.max(axis=0)
    centre = (low + high) / 2.0
    # Keep only the slab the slices can come from (plus room for tilt and deformation).
    z_lo = low[2] + slice_range[0] * (high[2] - low[2])
    z_hi = low[2] + slice_range[1] * (high[2] - low[2])
    margin = 30
    z0 = max(int(z_lo) - margin, 0)
    z1 = min(math.ceil(z_hi) + margin + 1, t1.shape[2])
    crop = np.s_[:, :, z0:z1]
    t1_crop = t1[crop] * mask[crop]
    return Atlas(
        t1_coeffs=ndimage.spline_filter(t1_crop, order=3, output=np.float32),
        mask=np.ascontiguousarray(mask[crop]),
        wm=np.ascontiguousarray(wm[crop]),
        centre=np.array([centre[0], centre[1], centre[2] - z0]),
        z_limits=(z_lo - z0, z_hi - z0),
    )


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``3 x 3`` rotation matrix: ``yaw`` about z, then ``pitch`` about y, then ``roll`` about x (radians)."""
    cz, sz = math.cos(yaw), math.sin(yaw)
    cy, sy = math.cos(pitch), math.sin(pitch)
    cx, sx = math.cos(roll), math.sin(roll)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx


def sampling_coordinates(
    rng: np.random.Generator,
    atlas: Atlas,
    slice_offsets: np.ndarray,
    size: int,
) -> np.ndarray:
    """Template voxel coordinates ``(3, n, S, S)`` of every output pixel for one subject.

    Output pixel ``(row, col)`` of slice ``k`` sits at ``(x, y, z)`` millimetres from the brain centre
    (anterior up, subject's right on the image's right); the subject's affine transform and smooth
    elastic displacement map it into the template. Both are smooth, so they are evaluated on a
    coarse grid and interpolated linearly to the full grid.
    """
    coarse = max(size // 8, 2) + 1
    spacing = FIELD_OF_VIEW_MM / size
    half = (size - 1) / 2.0
    axis = np.linspace(0, size - 1, coarse)
    rows, cols = np.meshgrid(axis, axis, indexing="ij")
    n = len(slice_offsets)
    points = np.stack(
        [
            np.broadcast_to((cols - half) * spacing, (n, coarse, coarse)),
            np.broadcast_to((half - rows) * spacing, (n, coarse, coarse)),
            np.broadcast_to(slice_offsets[:, None, None], (n, coarse, coarse)),
        ],
    ).reshape(3, -1)

    # Small affine: in-plane rotation, slight tilt, anisotropic scaling, in-plane shift.
    angles = np.deg2rad([rng.uniform(-10, 10), rng.uniform(-4, 4), rng.uniform(-4, 4)])
    scales = rng.uniform(0.93, 1.07, size=3)
    shift = np.array([rng.uniform(-4, 4), rng.uniform(-4, 4), 0.0])
    moved = (rotation(*angles) * scales) @ points + shift[:, None]

    # Elastic part: random displacements (about 3 mm) on a 20 mm control lattice, cubic B-spline.
    lattice_step = 20.0
    extent = np.array([180.0, 220.0, 120.0])
    lattice_shape = tuple(int(e / lattice_step) + 1 for e in extent)
    lattice_index = (moved + extent[:, None] / 2) / lattice_step
    displacement = np.empty_like(moved)
    for component in range(3):
        lattice = rng.normal(0.0, 3.0, size=lattice_shape)
        displacement[component] = ndimage.map_coordinates(lattice, lattice_index, order=3, mode="nearest")
    coords = moved + displacement + atlas.centre[:, None]
    coords = coords.reshape(3, n, coarse, coarse)
    zoom = (1, size / coarse, size / coarse)
    return np.stack([ndimage.zoom(c, zoom, order=1, grid_mode=False) for c in coords]).astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return (noise - noise.mean()) / (noise.std() + 1e-8)


__all__ = ["FIELD_OF_VIEW_MM", "Atlas", "load_atlas", "rotation", "sampling_coordinates", "smooth_noise"]
