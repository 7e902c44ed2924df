"""Awkward image files: bit depths, colour modes, tiny sizes and broken files, read and checked at setup.

Every expected value is computed from the array the test writes (no copied numbers). 8-bit files
must read exactly as anomalib's own reader reads them; deeper files must keep their full range.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import torch
from anomalib import TaskType
from anomalib.data import PredictDataset
from anomalib.data.datasets.image.folder import FolderDataset
from anomalib.data.utils import read_image
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image
from torch.utils.data import DataLoader

from anomalib_ea2d.data.image_io import (
    ImageReadError,
    find_bad_images,
    read_medical_image,
    read_medical_mask,
)
from anomalib_ea2d.data.mask_pairing import pair_masks
from anomalib_ea2d.data.medical_folder import (
    MedicalFolder,
    MedicalFolderDataset,
    MedicalPredictDataset,
    read_predict_paths_with_medical_reader,
)

SIZE = 24


def _gradient16() -> np.ndarray:
    return np.linspace(0, 65535, SIZE * SIZE).reshape(SIZE, SIZE).round().astype(np.uint16)


def _gray8() -> np.ndarray:
    return (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 256).astype(np.uint8)


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# --- 8-bit files: same result as anomalib's reader --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("gray.png", lambda: Image.fromarray(_gray8())),
        ("rgba.png", lambda: Image.fromarray(np.dstack([_gray8(), 255 - _gray8(), _gray8(), _gray8() // 2]))),
        ("cmyk.jpg", lambda: Image.fromarray(np.dstack([_gray8(), 255 - _gray8(), _gray8()])).convert("CMYK")),
        ("palette.png", lambda: Image.fromarray(np.dstack([_gray8()] * 3)).convert("P")),
        ("tiny.png", lambda: Image.fromarray(_gray8()[:3, :5])),
    ],
)
def test_8bit_modes_read_exactly_like_anomalib(tmp_path: Path, name: str, make: object) -> None:
    path = tmp_path / name
    make().save(path)  # type: ignore[operator]
    ours = read_medical_image(path)
    theirs = read_image(path, as_tensor=True)
    assert ours.shape[0] == 3
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


# --- 16-bit and float files: full range, no clipping -----------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif", ".pgm"])
def test_16bit_gray_uses_the_full_range(tmp_path: Path, suffix: str) -> None:
    array = _gradient16()
    path = tmp_path / f"xray{suffix}"
    if suffix == ".png":
        Image.fromarray(array).save(path)
    elif suffix == ".tif":
        tifffile.imwrite(path, array)
    else:  # Pillow opens 16-bit PGM as 32-bit integers
        path.write_bytes(f"P5\n{SIZE} {SIZE}\n65535\n".encode() + array.astype(">u2").tobytes())
    image = read_medical_image(path)
    expected = torch.from_numpy(array.astype(np.float32) / 65535.0)
    assert image.shape == (3, SIZE, SIZE)
    for channel in image:
        torch.testing.assert_close(channel, expected)
    # anomalib's reader clips everything above 255 to white: the reason this reader exists
    clipped = read_image(path, as_tensor=True)[0]
    assert (clipped == 1.0).float().mean() > 0.9
    assert (image[0] == 1.0).float().mean() < 0.01


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_keeps_channel_order_and_precision(tmp_path: Path, suffix: str) -> None:
    rgb = np.dstack([_gradient16(), 65535 - _gradient16(), np.full((SIZE, SIZE), 1234, np.uint16)])
    path = tmp_path / f"colour{suffix}"
    if suffix == ".png":
        cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    else:
        tifffile.imwrite(path, rgb, photometric="rgb")
    image = read_medical_image(path)
    expected = torch.from_numpy(rgb.astype(np.float32) / 65535.0).permute(2, 0, 1)
    torch.testing.assert_close(image, expected)


def test_float_tiff_in_unit_range_is_kept(tmp_path: Path) -> None:
    array = np.linspace(0, 1, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
    tifffile.imwrite(tmp_path / "f.tif", array)
    torch.testing.assert_close(read_medical_image(tmp_path / "f.tif")[1], torch.from_numpy(array))


def test_float_tiff_outside_unit_range_needs_minmax(tmp_path: Path) -> None:
    array = np.linspace(-3, 40, SIZE * SIZE, dtype=np.float32).reshape(SIZE, SIZE)
    path = tmp_path / "ct.tif"
    tifffile.imwrite(path, array)
    with pytest.raises(ImageReadError, match=r"ct\.tif.*minmax"):
        read_medical_image(path)
    scaled = read_medical_image(path, intensity_scaling="minmax")[0].numpy()
    np.testing.assert_allclose(scaled, (array - array.min()) / (array.max() - array.min()), atol=1e-6)


def test_signed_integers_need_minmax(tmp_path: Path) -> None:
    array = np.arange(-200, -200 + SIZE * SIZE, dtype=np.int16).reshape(SIZE, SIZE)
    path = tmp_path / "hu.tif"
    tifffile.imwrite(path, array)
    with pytest.raises(ImageReadError, match=r"hu\.tif.*int16.*minmax"):
        read_medical_image(path)
    assert read_medical_image(path, intensity_scaling="minmax").max() == 1.0


def test_nan_pixels_are_named(tmp_path: Path) -> None:
    array = np.zeros((SIZE, SIZE), np.float32)
    array[2, 3] = np.nan
    array[4, 4] = np.inf
    tifffile.imwrite(tmp_path / "nan.tif", array)
    for scaling in ("dtype", "minmax"):
        with pytest.raises(ImageReadError, match=r"nan\.tif contains 2 NaN/Inf"):
            read_medical_image(tmp_path / "nan.tif", intensity_scaling=scaling)  # type: ignore[arg-type]


def test_minmax_of_constant_image_is_finite(tmp_path: Path) -> None:
    Image.fromarray(np.full((SIZE, SIZE), 777, np.uint16)).save(tmp_path / "flat.png")
    image = read_medical_image(tmp_path / "flat.png", intensity_scaling="minmax")
    assert torch.isfinite(image).all()
    assert image.abs().max() == 0


def test_unknown_intensity_scaling_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="intensity_scaling must be one of"):
        read_medical_image(tmp_path / "x.png", intensity_scaling="percentile")  # type: ignore[arg-type]


def test_volume_tiff_is_refused_not_cut_to_one_slice(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "volume.tif", np.zeros((4, SIZE, SIZE), np.uint16), photometric="minisblack")
    with pytest.raises(ImageReadError, match=r"volume\.tif.*more than one 2-D image"):
        read_medical_image(tmp_path / "volume.tif")


def test_masks_of_any_depth(tmp_path: Path) -> None:
    region = np.zeros((SIZE, SIZE), bool)
    region[3:9, 5:12] = True
    Image.fromarray(region.astype(np.uint16) * 65535).save(tmp_path / "m16.png")
    tifffile.imwrite(tmp_path / "mf.tif", region.astype(np.float32) * 0.5)  # values that an 8-bit cast would zero
    for name in ("m16.png", "mf.tif"):
        mask = read_medical_mask(tmp_path / name)
        assert mask.dtype == torch.uint8
        assert torch.equal(mask.bool(), torch.from_numpy(region)), name


# --- broken files: one clear error naming the file ---------------------------------------------------


def _broken_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_gray8()).save(folder / "t.png")
    Image.fromarray(np.dstack([_gray8()] * 3)).save(folder / "t.jpg", quality=95)
    tifffile.imwrite(folder / "t.tif", np.repeat(_gradient16(), 8, axis=0))
    (folder / "notes.png").write_text("this is a text file\n")
    (folder / "empty.jpg").write_bytes(b"")
    return {
        "truncated PNG": _truncate(folder / "t.png"),
        "truncated JPEG": _truncate(folder / "t.jpg"),
        "truncated TIFF": _truncate(folder / "t.tif"),
        "text file named .png": folder / "notes.png",
        "empty file": folder / "empty.jpg",
    }


def test_each_broken_file_raises_an_error_naming_it(tmp_path: Path) -> None:
    for kind, path in _broken_files(tmp_path).items():
        with pytest.raises(ImageReadError, match="truncated, corrupt or not an image") as caught:
            read_medical_image(path)
        assert str(path) in str(caught.value), kind


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"gone\.png does not exist"):
        read_medical_image(tmp_path / "gone.png")


def test_find_bad_images_lists_every_problem_at_once(tmp_path: Path) -> None:
    broken = _broken_files(tmp_path / "bad")
    good = tmp_path / "good.png"
    Image.fromarray(_gray8()).save(good)
    small_mask = tmp_path / "small_mask.png"
    Image.fromarray(np.ones((SIZE // 2, SIZE), np.uint8)).save(small_mask)
    paths = [good, *broken.values(), good]
    masks = [None] * (len(paths) - 1) + [small_mask]
    bad = find_bad_images(paths, masks, num_threads=2)
    assert set(bad) == {str(p) for p in broken.values()} | {str(good)}  # good.png's second entry has a wrong mask
    assert "a mask must have its image's height and width" in bad[str(good)]


# --- datamodule and predict dataset ------------------------------------------------------------------


def _folder_with(tmp_path: Path, broken: int) -> Path:
    root = tmp_path / "data"
    for split in ("train", "test_good", "test_bad"):
        (root / split).mkdir(parents=True)
        for index in range(3):
            value = np.uint16(1000 * (index + 1) * (2 if split == "test_bad" else 1))
            Image.fromarray(np.full((40, 52), value, np.uint16)).save(root / split / f"{index}.png")
    for index in range(broken):
        (root / "train" / f"broken{index}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def _medical_folder(root: Path, **kwargs: object) -> MedicalFolder:
    return MedicalFolder(
        name="reliability",
        root=root,
        normal_dir="train",
        normal_test_dir="test_good",
        abnormal_dir="test_bad",
        train_batch_size=2,
        eval_batch_size=2,
        num_workers=0,
        **kwargs,  # type: ignore[arg-type]
    )


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


def test_plain_predict_dataset_is_read_and_checked_by_the_medical_reader(tmp_path: Path) -> None:
    root = _folder_with(tmp_path, broken=0)
    Image.fromarray(_gray8()).save(root / "train" / "gray8.png")
    theirs = PredictDataset(root / "train")
    ours = MedicalPredictDataset.from_predict_dataset(theirs)
    assert ours.image_filenames == theirs.image_filenames
    eight_bit = [index for index, path in enumerate(theirs.image_filenames) if path.name == "gray8.png"]
    assert torch.equal(ours[eight_bit[0]].image, theirs[eight_bit[0]].image)
    assert float(ours[0].image.max()) == pytest.approx(1000 / 65535)  # anomalib's reader clips it to 1.0

    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    chosen = DataLoader(MedicalPredictDataset(root / "test_good"), batch_size=2)
    trainer.predict_loop._data_source.instance = [DataLoader(theirs, batch_size=3), chosen]  # as Engine.predict does
    read_predict_paths_with_medical_reader(trainer)  # not predicting: nothing changes
    assert type(trainer.predict_loop._data_source.instance[0].dataset) is PredictDataset
    trainer.state.fn = TrainerFn.PREDICTING  # as Trainer.predict sets it before calling the model's setup
    read_predict_paths_with_medical_reader(trainer)
    replaced, kept = trainer.predict_loop._data_source.instance
    assert type(replaced.dataset) is MedicalPredictDataset
    assert replaced.batch_size == 3
    assert kept is chosen

    (root / "train" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"1 of 5 images of predict folder .*train cannot be used.*broken\.png"):
        MedicalPredictDataset.from_predict_dataset(PredictDataset(root / "train"))
