"""Volume scores and NIfTI maps: reduction of slice scores; maps back on the input's grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from anomalib_ea2d.callbacks.volume_results import VolumeResults, reduce_scores, write_anomaly_map
from anomalib_ea2d.data.volumes.records import SlicingOptions, inspect_volume
from tests.helpers.volumes import head


def test_reductions() -> None:
    scores = np.array([0.2, 0.9, 0.5, 0.7])
    assert reduce_scores(scores, "max") == 0.9
    assert reduce_scores(scores, "top_k_mean", top_k=3) == pytest.approx((0.9 + 0.7 + 0.5) / 3)
    with pytest.raises(ValueError, match="volume_score must be"):
        VolumeResults(volume_score="median")  # type: ignore[arg-type]


def test_map_goes_back_to_the_stored_grid(tmp_path: Path) -> None:
    data = head()
    affine = np.array([[0, 0, -1.5, 20], [-1.0, 0, 0, 5], [0, 1.2, 0, -3], [0, 0, 0, 1]])  # permuted, flipped axes
    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)
    record = inspect_volume(path, 0, SlicingOptions(axis="axial"))
    maps = {k: record.source.read_slice(record.geometry, k) for k in record.slices}  # the input as its own "map"
    write_anomaly_map(record, maps, tmp_path / "map.nii.gz")
    written = nib.load(tmp_path / "map.nii.gz")
    np.testing.assert_allclose(written.affine, affine)
    values = np.asarray(written.dataobj)
    assert values.dtype == np.float32
    assert values.shape == data.shape
    scored = np.zeros(data.shape, bool)
    for k in record.slices:
        record.geometry.write(scored, k, np.ones(record.geometry.slice_shape, bool))
    np.testing.assert_array_equal(values[scored], data[scored])
    assert not values[~scored].any()
