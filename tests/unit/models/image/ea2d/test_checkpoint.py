"""Files that are no PyTorch checkpoint at all are named for what they are, before torch reads them.

Without the check, torch.load ends in a bare ``EOFError`` (empty file), ``KeyError: 101`` (text), or
an unpickling error whose advice, ``weights_only=False``, is wrong and unsafe for such files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from anomalib_ea2d.models.image.ea2d.checkpoint import (
    CheckpointFormatError,
    GuardedCheckpointIO,
    check_checkpoint_file,
    describe_file_problem,
)

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 44820571\n"

NOT_TORCH = {
    "lfs.ckpt": (LFS_POINTER.encode(), "is a Git LFS pointer"),
    "page.ckpt": (b"<!DOCTYPE html>\n<html><body>Sign in</body></html>", "is an HTML page, not a checkpoint"),
    "lower.ckpt": (b"\n  <html lang='en'><head></head></html>", "is an HTML page, not a checkpoint"),
    "notes.ckpt": (b"hello world\n", "is a text file (it starts with 'hello world'), not a checkpoint"),
    "utf8.ckpt": ("Gewichte f\u00fcr das Modell\n".encode() * 40, "is a text file (it starts with 'Gewichte"),
    "bytes.ckpt": (bytes(range(7, 256)), "is not a PyTorch checkpoint (it starts with the bytes b'\\x07"),
    "png.ckpt": (b"\x89PNG\r\n\x1a\n" + bytes(40), "is not a PyTorch checkpoint"),
    "empty.ckpt": (b"", "is empty (0 bytes), not a checkpoint"),
    "pickle.ckpt": (b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00}\x94.", "is a Python pickle file"),
}


@pytest.fixture
def tensors() -> dict[str, torch.Tensor]:
    return {"weight": torch.arange(6.0).reshape(2, 3)}


@pytest.mark.parametrize("name", sorted(NOT_TORCH))
def test_non_torch_files_are_named(tmp_path: Path, name: str) -> None:
    content, expected = NOT_TORCH[name]
    path = tmp_path / name
    path.write_bytes(content)
    problem = describe_file_problem(path)
    assert problem is not None
    assert problem.startswith(f"{path} ")
    assert expected in problem
    assert "weights_only=False" not in problem
    with pytest.raises(CheckpointFormatError) as direct:
        check_checkpoint_file(path)
    with pytest.raises(CheckpointFormatError) as through_trainer_io:
        GuardedCheckpointIO(TorchCheckpointIO()).load_checkpoint(path)
    assert str(direct.value) == str(through_trainer_io.value) == problem


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("protocol", [2, 4])
def test_torch_files_pass(tmp_path: Path, tensors: dict[str, torch.Tensor], legacy: bool, protocol: int) -> None:
    path = tmp_path / "weights.pt"
    torch.save(tensors, path, _use_new_zipfile_serialization=not legacy, pickle_protocol=protocol)
    assert describe_file_problem(path) is None
    if protocol == 2:  # torch's weights-only unpickler does not read protocol 4's frames
        assert torch.equal(torch.load(path, weights_only=True)["weight"], tensors["weight"])


def test_cut_checkpoint_is_named_incomplete(tmp_path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "model.ckpt"
    torch.save(tensors, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # an interrupted copy
    problem = describe_file_problem(path)
    assert problem is not None
    assert "incomplete or damaged checkpoint" in problem
    with pytest.raises(CheckpointFormatError, match=r"copy the model\.ckpt written by training again"):
        check_checkpoint_file(path)


def test_lightning_messages_for_missing_paths_are_kept(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        GuardedCheckpointIO(TorchCheckpointIO()).load_checkpoint(tmp_path / "nowhere.ckpt")
