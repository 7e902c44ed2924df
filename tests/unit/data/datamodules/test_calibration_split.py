"""The held-out calibration split (``data.datamodules.calibration``) of the image and volume datamodules."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import RandomErasing

from anomalib_ea2d.data import MedicalFolder
from anomalib_ea2d.data.volumes import MedicalVolumes
from tests.helpers.tiny_data import FOLDER_ARGS, make_tiny_folder_dataset, tiny_synthetic_brain
from tests.helpers.volumes import VOLUME_FOLDERS, write_nifti_set


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder_dataset(tmp_path_factory.mktemp("calibration"))


def _folder(root: Path, **overrides: object) -> MedicalFolder:
    datamodule = MedicalFolder(root=root, **{**FOLDER_ARGS, **overrides})
    datamodule.setup()
    return datamodule


def test_normal_training_images_are_held_out_disjointly_and_reproducibly(folder_root: Path) -> None:
    whole = set(_folder(folder_root).train_data.samples.image_path)
    datamodule = _folder(folder_root, calibration_split_ratio=0.25, seed=3)
    train = set(datamodule.train_data.samples.image_path)
    held_out = set(datamodule.calibration_data.samples.image_path)
    assert (len(train), len(held_out)) == (6, 2)
    assert not train & held_out
    assert train | held_out == whole
    assert set(datamodule.calibration_data.samples.label_index) == {0}
    again = _folder(folder_root, calibration_split_ratio=0.25, seed=3)
    assert set(again.calibration_data.samples.image_path) == held_out
    others = [
        set(_folder(folder_root, calibration_split_ratio=0.25, seed=s).calibration_data.samples.image_path)
        for s in range(4, 9)
    ]
    assert any(other != held_out for other in others)  # the seed chooses


def test_the_calibration_loader_is_unshuffled_and_free_of_training_augmentations(folder_root: Path) -> None:
    # A random training augmentation would make two passes differ: calibration images get the validation ones.
    datamodule = _folder(
        folder_root, calibration_split_ratio=0.5, seed=0, train_augmentations=RandomErasing(p=1.0, value=0)
    )
    first = torch.cat([batch.image for batch in datamodule.calibration_dataloader()])
    second = torch.cat([batch.image for batch in datamodule.calibration_dataloader()])
    assert first.shape[0] == len(datamodule.calibration_data) == 4
    torch.testing.assert_close(first, second)
    order = [path for batch in datamodule.calibration_dataloader() for path in batch.image_path]
    assert order == list(datamodule.calibration_data.samples.image_path)
    passes = [
        {path: image for b in datamodule.train_dataloader() for path, image in zip(b.image_path, b.image, strict=True)}
        for _ in range(2)
    ]
    assert any(not torch.equal(image, passes[1][path]) for path, image in passes[0].items())  # it does apply there


def test_without_a_ratio_nothing_changes(folder_root: Path) -> None:
    datamodule = _folder(folder_root)
    assert datamodule.calibration_data is None
    assert datamodule.calibration_dataloader() is None
    assert len(datamodule.train_data) == 8


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_a_ratio_outside_zero_one_is_refused_with_the_fix(folder_root: Path, ratio: float) -> None:
    with pytest.raises(ValueError, match=r"calibration_split_ratio must be in \[0, 1\)"):
        MedicalFolder(root=folder_root, **FOLDER_ARGS, calibration_split_ratio=ratio)


def test_a_ratio_that_empties_a_side_names_the_counts(tmp_path: Path) -> None:
    root = make_tiny_folder_dataset(tmp_path)
    for image in sorted((root / "train/good").iterdir())[1:]:
        image.unlink()  # one training image left
    with pytest.raises(ValueError, match="leaves 1 training and 0 calibration images out of 1"):
        _folder(root, calibration_split_ratio=0.2)


def test_volumes_are_held_out_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_nifti_set(tmp_path / "set", train=5, test_normal=2, test_abnormal=2)
    datamodule = MedicalVolumes(
        name="v",
        root=root,
        **VOLUME_FOLDERS,
        num_workers=0,
        seed=0,
        calibration_split_ratio=0.4,
    )
    with caplog.at_level(logging.INFO):
        datamodule.setup()
    assert "Calibration split: 2 of 5 normal training volumes (" in caplog.text
    train, held_out = set(datamodule.train_data.volumes), set(datamodule.calibration_data.volumes)
    assert (len(train), len(held_out)) == (3, 2)
    assert not train & held_out
    samples = datamodule.calibration_data.samples
    for volume in held_out:  # every slice of a held-out volume went with it
        assert len(samples[samples.volume == volume]) == len(datamodule.volume_records[volume].slices)
    assert len(torch.cat([b.image for b in datamodule.calibration_dataloader()])) == len(samples)


def _subject(path: str) -> str:
    return Path(path).name.split("_")[1]


def test_the_synthetic_set_holds_out_whole_subjects(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    datamodule = tiny_synthetic_brain(
        tmp_path / "brain", 32, num_train=12, slices_per_subject=3, calibration_split_ratio=0.25
    )
    with caplog.at_level(logging.INFO):
        datamodule.setup()
    train = {_subject(p) for p in datamodule.train_data.samples.image_path}
    held_out = list(datamodule.calibration_data.samples.image_path)
    subjects = {_subject(p) for p in held_out}
    assert len(subjects) == 1  # 0.25 of the 4 subjects
    assert len(held_out) == 3  # with all 3 of its slices
    assert not train & subjects
    assert len(datamodule.train_data) == 9
    assert "Calibration split: 1 of 4 subjects" in caplog.text
    assert "3 of 12 normal training images" in caplog.text


def test_a_folder_set_holds_out_whole_subjects_by_pattern(tmp_path: Path) -> None:
    root = make_tiny_folder_dataset(tmp_path)
    train_dir = root / "train/good"
    for i, image in enumerate(sorted(train_dir.iterdir())):  # 8 images -> subjects a, b, c, d, two each
        image.rename(train_dir / f"sub-{'abcd'[i // 2]}_slice{i}{image.suffix}")
    datamodule = _folder(root, calibration_split_ratio=0.5, seed=1, calibration_group_pattern=r"^sub-(\w)_")
    held_out = [Path(p).name for p in datamodule.calibration_data.samples.image_path]
    kept = [Path(p).name for p in datamodule.train_data.samples.image_path]
    assert len(held_out) == 4
    assert len({name[4] for name in held_out}) == 2
    assert not {name[4] for name in held_out} & {name[4] for name in kept}
    # the same split by single images mixes subjects on both sides for some seed
    mixed = [
        {
            Path(p).name[4]
            for p in _folder(root, calibration_split_ratio=0.5, seed=s).calibration_data.samples.image_path
        }
        for s in range(6)
    ]
    assert any(len(subjects) > 2 for subjects in mixed)


def test_a_group_pattern_that_misses_a_file_or_does_not_compile_names_the_fix(tmp_path: Path) -> None:
    root = make_tiny_folder_dataset(tmp_path)
    with pytest.raises(ValueError, match=r"does not match calibration_group_pattern='\^sub-'"):
        _folder(root, calibration_split_ratio=0.5, calibration_group_pattern="^sub-")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        MedicalFolder(root=root, **FOLDER_ARGS, calibration_group_pattern="(sub")
