"""MedicalFolder, its predict dataset and mask pairing: every file checked at setup, bad ones listed or skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib import TaskType
from anomalib.data import PredictDataset
from anomalib.data.datasets.image.folder import FolderDataset
from PIL import Image

from anomalib_ea2d.data.datamodules.medical_folder import MedicalFolder
from anomalib_ea2d.data.datasets.medical_folder import MedicalFolderDataset, MedicalPredictDataset
from anomalib_ea2d.data.readers.image import (
    ImageReadError,
)
from anomalib_ea2d.data.readers.mask_pairing import pair_masks
from tests.helpers.images import write_png16
from tests.helpers.tiny_data import medical_folder

SIZE = 24


def _gray8() -> np.ndarray:
    return (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 256).astype(np.uint8)


# --- datamodule and predict dataset ------------------------------------------------------------------


def _folder_with(tmp_path: Path, broken: int) -> Path:
    root = tmp_path / "data"
    for split in ("train", "test_good", "test_bad"):
        for index in range(3):
            value = 1000 * (index + 1) * (2 if split == "test_bad" else 1)
            write_png16(root / split / f"{index}.png", np.full((40, 52), value))
    for index in range(broken):
        (root / "train" / f"broken{index}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def _medical_folder(root: Path, **kwargs: object) -> MedicalFolder:
    return medical_folder(root, "reliability", train_batch_size=2, eval_batch_size=2, **kwargs)


def test_medical_folder_reads_16bit_without_clipping(tmp_path: Path) -> None:
    datamodule = _medical_folder(_folder_with(tmp_path, broken=0))
    datamodule.setup()
    values = sorted(float(datamodule.train_data[i].image.max()) for i in range(len(datamodule.train_data)))
    assert values == pytest.approx([1000 / 65535, 2000 / 65535, 3000 / 65535])
    batch = next(iter(datamodule.test_dataloader()))
    assert batch.image.shape[1:] == (3, 40, 52)


def test_medical_folder_lists_all_bad_files_at_setup(tmp_path: Path) -> None:
    datamodule = _medical_folder(_folder_with(tmp_path, broken=2))
    with pytest.raises(ValueError, match=r"2 of 11 images of MedicalFolder 'reliability' cannot be used") as caught:
        datamodule.setup()
    message = str(caught.value)
    assert "broken0.png" in message
    assert "broken1.png" in message
    assert "on_bad_image='skip'" in message


def test_medical_folder_can_skip_bad_files_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    datamodule = _medical_folder(_folder_with(tmp_path, broken=2), on_bad_image="skip")
    with caplog.at_level(logging.WARNING):
        datamodule.setup()
    assert len(datamodule.train_data) == 3
    assert all("broken" not in path for path in datamodule.train_data.samples.image_path)
    assert "skipped 2 unusable images" in caplog.text
    assert "broken1.png" in caplog.text


def test_unchecked_medical_folder_still_names_the_bad_file_when_read(tmp_path: Path) -> None:
    datamodule = _medical_folder(_folder_with(tmp_path, broken=1), check_images=False)
    datamodule.setup()
    with pytest.raises(ImageReadError, match=r"broken0\.png"):
        for _ in datamodule.train_dataloader():
            pass


def test_empty_and_missing_directories_are_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match=r"Found 0 .*empty"):
        MedicalFolder(name="e", root=tmp_path, normal_dir="empty", num_workers=0).setup()
    with pytest.raises(FileNotFoundError, match=r"nowhere"):
        MedicalFolder(name="m", root=tmp_path, normal_dir="nowhere", num_workers=0).setup()
    with pytest.raises(ValueError, match=r"Found 0 images in .*empty"):
        MedicalPredictDataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"nowhere"):
        MedicalPredictDataset(tmp_path / "nowhere")


def test_predict_dataset_checks_and_reads_deep_images(tmp_path: Path) -> None:
    root = _folder_with(tmp_path, broken=1)
    with pytest.raises(ValueError, match=r"1 of 4 images of predict folder .*broken0\.png"):
        MedicalPredictDataset(root / "train")
    dataset = MedicalPredictDataset(root / "train", on_bad_image="skip")
    assert len(dataset) == 3
    assert float(dataset[0].image.max()) == pytest.approx(1000 / 65535)


# --- masks paired by name; anomalib's plain predict path read by the checked reader ------------------


def _with_masks(root: Path, names: list[str]) -> Path:
    (root / "masks").mkdir()
    for name in names:
        mask = np.zeros((40, 52), np.uint8)
        mask[5:15, 5:15] = 255
        Image.fromarray(mask).save(root / "masks" / name)
    return root


def test_pair_masks_keeps_anomalibs_pairing_and_names_the_missing_one() -> None:
    images = ["bad/0.png", "bad/1.png", "bad/2.png"]
    suffixed = [Path(f"gt/{index}_mask.png") for index in range(3)]
    assert pair_masks(images, suffixed, Path("gt")) == [str(mask) for mask in suffixed]  # anomalib's rule
    missing = [suffixed[0], suffixed[2], Path("gt/9_mask.png")]  # 1 has none; an extra mask is harmless
    assert pair_masks(images, missing, Path("gt")) == ["gt/0_mask.png", "gt/1.png", "gt/2_mask.png"]


def test_masks_are_paired_as_anomalibs_folder_pairs_them(tmp_path: Path) -> None:
    root = _with_masks(_folder_with(tmp_path, broken=0), ["0.png", "1.png", "2.png"])
    folders = {"root": root, "normal_dir": "train", "abnormal_dir": "test_bad", "mask_dir": "masks", "split": "test"}
    ours, theirs = MedicalFolderDataset(name="r", **folders), FolderDataset(name="r", **folders)
    assert list(ours.samples.image_path) == list(theirs.samples.image_path)
    assert list(ours.samples.mask_path) == list(theirs.samples.mask_path)
    assert sum(path.endswith(".png") for path in ours.samples.mask_path) == 3
    assert ours.task == theirs.task == TaskType.SEGMENTATION


def test_missing_mask_is_named_at_setup_or_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _with_masks(_folder_with(tmp_path, broken=1), ["0.png", "2.png"])
    with pytest.raises(ValueError, match=r"2 of 10 images of MedicalFolder 'reliability' cannot be used") as caught:
        _medical_folder(root, mask_dir="masks").setup()
    message = str(caught.value)
    assert f"Mask file {root / 'masks' / '1.png'} does not exist; add the mask or check mask_dir" in message
    assert "broken0.png" in message
    assert ".." not in message.replace("...", "")

    datamodule = _medical_folder(root, mask_dir="masks", on_bad_image="skip", val_split_mode="same_as_test")
    with caplog.at_level(logging.WARNING):
        datamodule.setup()
    assert f"unusable image {root / 'test_bad' / '1.png'}" in caplog.text
    abnormal = datamodule.test_data.samples[datamodule.test_data.samples.label_index == 1]
    assert [Path(path).name for path in abnormal.image_path] == ["0.png", "2.png"]
    assert [Path(path).name for path in abnormal.mask_path] == ["0.png", "2.png"]


def test_predict_dataset_from_anomalibs_reads_the_same_files_and_checks_them(tmp_path: Path) -> None:
    root = _folder_with(tmp_path, broken=0)
    Image.fromarray(_gray8()).save(root / "train" / "gray8.png")
    theirs = PredictDataset(root / "train")
    ours = MedicalPredictDataset.from_predict_dataset(theirs)
    assert ours.image_filenames == theirs.image_filenames
    eight_bit = [index for index, path in enumerate(theirs.image_filenames) if path.name == "gray8.png"]
    assert torch.equal(ours[eight_bit[0]].image, theirs[eight_bit[0]].image)
    assert float(ours[0].image.max()) == pytest.approx(1000 / 65535)  # anomalib's reader clips it to 1.0

    (root / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"1 of 5 images of predict folder .*train cannot be used.*broken\.png"):
        MedicalPredictDataset.from_predict_dataset(PredictDataset(root / "train"))
