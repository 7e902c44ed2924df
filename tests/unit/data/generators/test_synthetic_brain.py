"""Synthetic brain-MRI generator: determinism, lesion/mask consistency, caching and parameter checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from anomalib_ea2d.data.generators.synthetic_brain import (
    SyntheticBrainParams,
    generate_synthetic_brain,
    is_up_to_date,
    synthesize_subject,
)
from anomalib_ea2d.data.layout import LESION_MASK_DIR, MANIFEST_NAME, TEST_LESION_DIR, TEST_NORMAL_DIR, TRAIN_DIR

TINY = SyntheticBrainParams(image_size=64, num_train=3, num_test_normal=2, num_test_abnormal=3, slices_per_subject=2)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_brain(tmp_path_factory.mktemp("brain") / "set", TINY)


def test_layout_and_counts(tiny_set: Path) -> None:
    counts = {folder: len(list((tiny_set / folder).glob("*.png"))) for folder in (TRAIN_DIR, TEST_NORMAL_DIR)}
    assert counts == {TRAIN_DIR: TINY.num_train, TEST_NORMAL_DIR: TINY.num_test_normal}
    abnormal = sorted(p.name for p in (tiny_set / TEST_LESION_DIR).glob("*.png"))
    masks = sorted(p.name for p in (tiny_set / LESION_MASK_DIR).glob("*.png"))
    assert len(abnormal) == TINY.num_test_abnormal
    assert abnormal == masks  # anomalib's Folder pairs images and masks by name
    image = np.asarray(Image.open(next((tiny_set / TRAIN_DIR).glob("*.png"))))
    assert image.shape == (64, 64)
    assert image.dtype == np.uint8
    manifest = json.loads((tiny_set / MANIFEST_NAME).read_text())
    assert manifest["digest"] == TINY.digest()
    assert manifest["params"]["image_size"] == 64


def test_masks_are_binary_and_non_empty(tiny_set: Path) -> None:
    for path in (tiny_set / LESION_MASK_DIR).glob("*.png"):
        mask = np.asarray(Image.open(path))
        assert set(np.unique(mask)) == {0, 255}, path.name


def test_same_seed_gives_identical_files(tiny_set: Path, tmp_path: Path) -> None:
    again = generate_synthetic_brain(tmp_path / "again", TINY)
    assert _files(again) == _files(tiny_set)


def test_different_seed_gives_different_files(tiny_set: Path, tmp_path: Path) -> None:
    other = generate_synthetic_brain(tmp_path / "other", SyntheticBrainParams(**{**TINY.to_dict(), "seed": 1}))
    for folder in (TRAIN_DIR, TEST_NORMAL_DIR, TEST_LESION_DIR):
        first = [np.asarray(Image.open(p)) for p in sorted((tiny_set / folder).glob("*.png"))]
        second = [np.asarray(Image.open(p)) for p in sorted((other / folder).glob("*.png"))]
        assert len(first) == len(second)
        assert all(not np.array_equal(a, b) for a, b in zip(first, second, strict=True)), folder


def test_splits_come_from_different_subjects() -> None:
    train = synthesize_subject(TINY, "train", 0)
    test = synthesize_subject(TINY, "test_normal", 0)
    assert not np.array_equal(train.brain, test.brain)


def test_lesions_are_inside_the_brain_and_visible() -> None:
    params = SyntheticBrainParams(image_size=96, slices_per_subject=3)
    for index in range(2):
        subject = synthesize_subject(params, "test_abnormal", index)
        for k in range(3):
            mask, brain = subject.lesion_masks[k], subject.brain[k]
            image, clean = subject.images[k].astype(int), subject.clean[k].astype(int)
            assert mask.any(), "every abnormal slice has a lesion"
            assert not (mask & ~brain).any(), "lesion mask leaves the brain"
            assert np.array_equal(image[~brain], clean[~brain]), "lesion changed pixels outside the brain"
            # Visible: inside the mask the lesion differs clearly from the same slice without it.
            assert np.abs(image - clean)[mask].mean() > 10
            # Not trivially saturated: most lesion pixels stay below white.
            assert (image[mask] == 255).mean() < 0.5
            # Away from the lesion and its soft rim the slice is (nearly) untouched.
            far = ~ndimage.binary_dilation(mask, iterations=3)
            assert np.abs(image - clean)[far].mean() < np.abs(image - clean)[mask].mean() / 20


def test_normal_subjects_have_no_lesions() -> None:
    subject = synthesize_subject(TINY, "test_normal", 0)
    assert not subject.lesion_masks.any()
    assert np.array_equal(subject.images, subject.clean)
    assert subject.brain.mean() > 0.2  # the brain fills a good part of the field of view


def test_lesion_count_follows_the_parameter() -> None:
    params = SyntheticBrainParams(
        image_size=128, slices_per_subject=4, lesions_per_image=(1, 1), lesion_radius_mm=(6, 6)
    )
    subject = synthesize_subject(params, "test_abnormal", 0)
    for mask in subject.lesion_masks:
        # One lesion per slice: one large connected component (tiny fragments of its ragged edge aside).
        labels, _count = ndimage.label(mask)
        sizes = np.bincount(labels.ravel())[1:]
        assert (sizes > 0.2 * sizes.max()).sum() == 1


def test_cache_is_reused_and_regenerated_on_change(tmp_path: Path) -> None:
    root = generate_synthetic_brain(tmp_path / "set", TINY)
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    generate_synthetic_brain(root, TINY)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == stamp, "unchanged parameters regenerate"

    changed = SyntheticBrainParams(**{**TINY.to_dict(), "num_train": 4})
    assert not is_up_to_date(root, changed)
    generate_synthetic_brain(root, changed)
    assert len(list((root / TRAIN_DIR).glob("*.png"))) == 4
    assert json.loads((root / MANIFEST_NAME).read_text())["digest"] == changed.digest()
    assert is_up_to_date(root, changed)
    assert not is_up_to_date(root, TINY)

    # A missing file makes the cache stale too.
    next((root / TEST_NORMAL_DIR).glob("*.png")).unlink()
    assert not is_up_to_date(root, changed)
    generate_synthetic_brain(root, changed)
    assert len(list((root / TEST_NORMAL_DIR).glob("*.png"))) == TINY.num_test_normal
    assert not list(tmp_path.glob(".*tmp*")), "staging folder left behind"


def test_refuses_to_write_into_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        generate_synthetic_brain(tmp_path, TINY)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_size": 16}, "image_size"),
        ({"num_train": 0}, "count"),
        ({"lesions_per_image": (3, 1)}, "lesions_per_image"),
        ({"slice_range": (0.8, 0.2)}, "slice_range"),
        ({"lesion_radius_mm": (1.0,)}, "pair"),
    ],
)
def test_invalid_parameters_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticBrainParams(**change)


def test_params_accept_lists_and_hash_like_tuples() -> None:
    assert SyntheticBrainParams(lesions_per_image=[1, 3]).digest() == SyntheticBrainParams().digest()  # type: ignore[arg-type]
    assert SyntheticBrainParams(seed=1).digest() != SyntheticBrainParams().digest()
