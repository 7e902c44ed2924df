"""Splits move whole volumes, label-balanced where asked, reproducibly with a seed; predicting makes none."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch import seed_everything
from lightning.pytorch.trainer.states import TrainerFn

from anomalib_ea2d.data.volumes import MedicalVolumes, VolumeReadError
from anomalib_ea2d.data.volumes.splits import volume_partition
from tests.helpers.volumes import write_nifti_set


def test_partition_is_seeded_and_label_aware() -> None:
    volumes = [f"v{i}" for i in range(10)]
    labels = [0] * 6 + [1] * 4
    kept, taken = volume_partition(volumes, labels, 0.5, seed=3, label_aware=True)
    assert sorted(kept + taken) == volumes
    assert not set(kept) & set(taken)
    assert sorted(labels[volumes.index(v)] for v in taken) == [0, 0, 0, 1, 1]
    assert volume_partition(volumes, labels, 0.5, seed=3, label_aware=True) == (kept, taken)
    assert any(volume_partition(volumes, labels, 0.5, seed=s, label_aware=True)[1] != taken for s in range(4, 10))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nifti_set(tmp_path_factory.mktemp("splits") / "set", train=6, test_normal=4, test_abnormal=4)


def _volumes(root: Path, normal_test_dir: str | None, **options: Any) -> MedicalVolumes:
    """The test set as ``MedicalVolumes`` with ``options``, set up."""
    datamodule = MedicalVolumes(
        name="v",
        root=root,
        normal_dir="train/good",
        abnormal_dir="test/lesion",
        normal_test_dir=normal_test_dir,
        mask_dir="ground_truth/lesion",
        num_workers=0,
        **options,
    )
    datamodule.setup()
    return datamodule


@pytest.mark.parametrize(
    ("val_split_mode", "normal_test_dir"),
    [("from_test", "test/good"), ("from_train", "test/good"), ("from_test", None)],
)
def test_no_volume_is_on_both_sides(root: Path, val_split_mode: str, normal_test_dir: str | None) -> None:
    datamodule = _volumes(root, normal_test_dir, val_split_mode=val_split_mode, test_split_ratio=0.34, seed=1)
    subsets = {name: set(getattr(datamodule, f"{name}_data").volumes) for name in ("train", "val", "test")}
    assert all(subsets.values())
    assert not subsets["train"] & subsets["val"]
    assert not subsets["train"] & subsets["test"]
    assert not subsets["val"] & subsets["test"]
    for name in ("train", "val", "test"):  # every slice of a volume went with it
        samples = getattr(datamodule, f"{name}_data").samples
        for volume in subsets[name]:
            assert len(samples[samples.volume == volume]) == len(datamodule.volume_records[volume].slices)
    labels = {datamodule.volume_records[v].label_index for v in subsets["test"]}
    assert labels == {0, 1}  # normal volumes are tested even without normal_test_dir


def test_synthetic_split_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="Synthetic anomalies need image files"):
        MedicalVolumes(name="v", normal_dir="x", val_split_mode="synthetic")


def test_the_predict_stage_reads_only_the_volumes_to_predict(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No training or test volume is read (so none can fail) and no split is made or announced."""
    caplog.set_level(logging.INFO)
    datamodule = MedicalVolumes(
        name="v", root=root, normal_dir="no/such/folder", abnormal_dir="test/lesion", predict_dir="test/good",
        mask_dir="no/masks/either", num_workers=0,
    )  # fmt: skip
    datamodule.setup(TrainerFn.PREDICTING)
    expected = sorted(str(p) for p in (root / "test/good").iterdir())
    assert sorted(datamodule.predict_data.volumes) == expected
    assert sorted(datamodule.volume_records) == expected
    assert not any(hasattr(datamodule, f"{subset}_data") for subset in ("train", "val", "test"))
    for message in ("No normal test volumes", "moving", "renamed"):  # no split announced, nothing renamed
        assert message not in caplog.text


def test_predicting_a_datamodule_with_nothing_to_predict_names_the_fix(root: Path) -> None:
    datamodule = MedicalVolumes(name="v", root=root, normal_dir="train/good", num_workers=0)
    with pytest.raises(VolumeReadError, match=r"'v' has no volume to predict; pass predict_dir"):
        datamodule.setup(TrainerFn.PREDICTING)


def test_a_datamodule_set_up_before_predicting_keeps_its_subsets(root: Path) -> None:
    datamodule = MedicalVolumes(
        name="v", root=root, normal_dir="train/good", abnormal_dir="test/lesion", predict_dir="test/good",
        mask_dir="ground_truth/lesion", num_workers=0, seed=0,
    )  # fmt: skip
    datamodule.setup()  # by hand, without a trainer
    tested = datamodule.test_data.volumes
    datamodule.setup(TrainerFn.PREDICTING)
    assert datamodule.test_data.volumes == tested
    assert sorted(datamodule.predict_data.volumes) == sorted(str(p) for p in (root / "test/good").iterdir())


def test_an_unseeded_split_follows_seed_everything(root: Path) -> None:
    """``seed=None`` (MedicalVolumes' default) draws from torch's seeded generator, as anomalib's splits do."""
    volumes = [f"v{i}" for i in range(10)]
    labels = [0] * 6 + [1] * 4
    draws = []
    for seed in (5, 5, 6, 7, 8):
        seed_everything(seed)
        draws.append(volume_partition(volumes, labels, 0.5, seed=None, label_aware=True))
    assert draws[0] == draws[1]
    assert any(draw != draws[0] for draw in draws[2:])

    def test_volumes() -> set[str]:
        datamodule = _volumes(root, "test/good", calibration_split_ratio=0.34)
        return set(datamodule.test_data.volumes) | {f"calibration:{v}" for v in datamodule.calibration_data.volumes}

    seed_everything(11)
    first = test_volumes()
    seed_everything(11)
    assert test_volumes() == first
