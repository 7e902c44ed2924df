"""Synthetic brain volumes: layout, determinism, 3-D lesion masks on the volume's grid, same subjects as the 2-D set."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from anomalib_ea2d.data.generators.synthetic_brain_volumes import (
    SyntheticVolumeParams,
    generate_synthetic_brain_volumes,
    synthesize_volume,
)

TINY = SyntheticVolumeParams(volume_size=32, num_train=1, num_test_normal=1, num_test_abnormal=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_brain_volumes(tmp_path_factory.mktemp("vol") / "set", TINY)


def test_layout_masks_and_grid(tiny: Path) -> None:
    lesions = sorted(p.name for p in (tiny / "test/lesion").iterdir())
    assert lesions == sorted(p.name for p in (tiny / "ground_truth/lesion").iterdir())
    assert len(list((tiny / "train/good").iterdir())) == 1
    for name in lesions:
        volume, mask = nib.load(tiny / "test/lesion" / name), nib.load(tiny / "ground_truth/lesion" / name)
        assert volume.shape == mask.shape
        assert np.allclose(volume.affine, mask.affine)
        lesion = np.asarray(mask.dataobj) > 0
        assert lesion.any()
        # a 3-D blob: it spans several slices along every axis
        assert all((lesion.any(axis=tuple(a for a in range(3) if a != k)).sum() >= 2) for k in range(3))
        assert np.asarray(volume.dataobj)[lesion].min() > 0  # inside the brain


def test_same_seed_same_volume_and_the_lesions_change_the_image() -> None:
    a, mask, affine = synthesize_volume(TINY, "test_abnormal", 0)
    b, _, _ = synthesize_volume(TINY, "test_abnormal", 0)
    assert np.array_equal(a, b)
    other, _, _ = synthesize_volume(SyntheticVolumeParams(volume_size=32, seed=1), "test_abnormal", 0)
    assert not np.array_equal(a, other)
    _normal, _, _ = synthesize_volume(TINY, "test_normal", 0)
    assert np.abs(a[mask > 0].astype(float).mean() - np.median(a[a > 0])) > 50  # lesions differ from tissue
    assert np.allclose(np.diag(affine)[:3], 210 / 32)


def test_a_foreign_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match=r"not empty and has no manifest\.json"):
        generate_synthetic_brain_volumes(tmp_path, TINY)
