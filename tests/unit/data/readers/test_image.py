"""The medical-image reader (``data/readers/image.py``): bit depths, colour modes, tiny sizes and broken files.

Every expected value is computed from the array the test writes (no copied numbers). 8-bit files
must read exactly as anomalib's own reader reads them; deeper files must keep their full range.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
import torch
from anomalib.data.utils import read_image
from PIL import Image

from anomalib_ea2d.data.readers.image import (
    ImageReadError,
    find_bad_images,
    read_medical_image,
    read_medical_mask,
)
from tests.helpers.images import write_png16

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
        write_png16(path, array)
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
    write_png16(tmp_path / "flat.png", np.full((SIZE, SIZE), 777))
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
    write_png16(tmp_path / "m16.png", region.astype(np.uint16) * 65535)
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
