"""Slicing in the patient's frame: stored orientation does not change the slices; write inverts read."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest

from anomalib_ea2d.data.volumes.orientation import AXES, SliceGeometry


def _reoriented(data: np.ndarray, ornt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same image stored with another orientation: (array, voxel->RAS affine)."""
    affine = np.diag([1.0, 2.0, 3.0, 1.0])
    transform = nib.orientations.ornt_transform(nib.orientations.io_orientation(affine), ornt)
    stored = nib.orientations.apply_orientation(data, transform)
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, data.shape)
    return stored, new_affine


@pytest.mark.parametrize("axis", AXES)
def test_every_stored_orientation_gives_the_ras_slices(axis: str) -> None:
    data = np.random.default_rng(0).random((5, 6, 7))
    reference = SliceGeometry.from_affine(np.diag([1.0, 2.0, 3.0, 1.0]), data.shape, axis)
    expected = [reference.read(data, k) for k in range(reference.num_slices)]
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((1, -1), repeat=3):
            ornt = np.array([[p, f] for p, f in zip(perm, flips, strict=True)], dtype=float)
            stored, affine = _reoriented(data, ornt)
            geometry = SliceGeometry.from_affine(affine, stored.shape, axis)
            got = [geometry.read(stored, k) for k in range(geometry.num_slices)]
            assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True)), (perm, flips)


def test_axial_view_is_neurological() -> None:
    # RAS array: x to the right, y to anterior, z to superior.
    data = np.zeros((4, 5, 3))
    data[3, 4, 2] = 1.0  # right, anterior, superior corner
    geometry = SliceGeometry.from_affine(np.eye(4), data.shape, "axial")
    image = geometry.read(data, 2)  # highest slice = most superior
    assert image.shape == (5, 4)
    assert image[0, -1] == 1.0  # anterior at the top, the patient's right on the image's right


@pytest.mark.parametrize("axis", AXES)
def test_write_inverts_read(axis: str) -> None:
    data = np.random.default_rng(1).random((4, 5, 6))
    affine = np.array([[0, -1.0, 0, 0], [0, 0, 2.0, 0], [-1.5, 0, 0, 0], [0, 0, 0, 1]])
    geometry = SliceGeometry.from_affine(affine, data.shape, axis)
    rebuilt = np.zeros_like(data)
    for k in range(geometry.num_slices):
        geometry.write(rebuilt, k, geometry.read(data, k))
    assert np.array_equal(rebuilt, data)


def test_unknown_axis_is_refused() -> None:
    with pytest.raises(ValueError, match="axis must be one of"):
        SliceGeometry.from_affine(np.eye(4), (2, 2, 2), "transverse")
