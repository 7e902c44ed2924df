"""Clear errors when a file given to EA2D as a checkpoint is not an EA2D checkpoint.

Without these checks, a state dict saved by the paper's reference code fails deep in Lightning
with ``KeyError: 'pytorch-lightning_version'``, another anomalib model's checkpoint fails with
a ``weights_only`` unpickling error or hundreds of missing keys, and a file that is no PyTorch file
at all (empty after an interrupted copy, a Git LFS pointer, an HTML error page saved as ``.ckpt``)
fails with a bare ``EOFError``/``KeyError`` or misleading ``weights_only`` advice. Here each case gets
one message saying what the file is and what to do (:func:`describe_file_problem` looks at the
first bytes before torch reads anything), in every entry point:

* :func:`check_checkpoint_file` for ``EA2D.load_from_checkpoint``;
* :class:`GuardedCheckpointIO` (installed by :func:`guard_trainer_checkpoints`) for the trainer's
  ``ckpt_path`` (``anomalib train/test/predict --ckpt_path``, ``Engine.test(ckpt_path=...)``);
* :func:`check_not_reference_state_dict` for ``EA2DModel.load_state_dict``.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch import Trainer

from anomalib_ea2d.models.image.ea2d.reference import PREFIX_MAP

EA2D_STATE_PREFIXES: tuple[str, ...] = ("model.encoder.", "model.branches.")
"""Every EA2D Lightning checkpoint holds tensors under these prefixes."""

_CONVERT_HINT = (
    "model = EA2D(backbone=..., pre_trained=False); "
    "model.model.load_state_dict(convert_reference_state_dict(torch.load(path, weights_only=True)))"
)


_HEAD_BYTES = 512
_LFS_POINTER = b"version https://git-lfs"
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
_PICKLE_PROTOCOL = b"\x80"  # every binary pickle starts with this protocol marker
_LEGACY_MAGIC = b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # legacy torch.save: pickled magic number


class CheckpointFormatError(ValueError):
    """A file passed as an EA2D checkpoint is something else; the message says what and how to load it."""


def _text_head(head: bytes) -> str | None:
    """The first bytes as text if they look like text (UTF-8, no control characters but whitespace)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:  # the head may end inside a multi-byte character
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return None
    if any(not char.isprintable() and char not in "\t\r\n\f" for char in text):
        return None
    return text


def describe_file_problem(path: str | Path) -> str | None:
    r"""Why the file at ``path`` is no PyTorch checkpoint at all, judged from its first bytes, or ``None``.

    Recognised: an empty file, a Git LFS pointer, an HTML page, other text, a plain pickle, other
    non-torch bytes and a torch zip archive cut short. ``None`` means the file may be a torch file
    (it is not loaded here).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "model.ckpt"
        >>> _ = path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 9\n")
        >>> describe_file_problem(path)  # doctest: +ELLIPSIS
        '... is a Git LFS pointer (a small text file that stands in for the real file), not the checkpoint; ...'
    """
    path = Path(path)
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
    if not head:
        return (
            f"{path} is empty (0 bytes), not a checkpoint: the copy or download was interrupted or the disk was full; "
            "copy the model.ckpt written by training again."
        )
    if head.startswith(_LFS_POINTER):
        return (
            f"{path} is a Git LFS pointer (a small text file that stands in for the real file), not the checkpoint; "
            "fetch the real file with `git lfs pull` in the repository (after `git lfs install`), or download it again."
        )
    if head.startswith((_ZIP_MAGIC, _PICKLE_PROTOCOL)):
        return _describe_binary(path, head)
    return _describe_other_bytes(path, head)


def _describe_binary(path: Path, head: bytes) -> str | None:
    """``None`` for a complete zip archive or a legacy torch file; what it is for a cut zip or a plain pickle."""
    if head.startswith(_ZIP_MAGIC):
        if zipfile.is_zipfile(path):
            return None
        return (
            f"{path} is an incomplete or damaged checkpoint (its zip archive has no end): the copy or download was "
            "probably interrupted; copy the model.ckpt written by training again."
        )
    if _LEGACY_MAGIC in head[:32]:  # after the protocol marker (and a frame header from protocol 4 on)
        return None
    return (
        f"{path} is a Python pickle file, not a PyTorch checkpoint (torch.save writes a zip archive); "
        "pass the model.ckpt written by anomalib training."
    )


def _describe_other_bytes(path: Path, head: bytes) -> str:
    """What a file that starts like no torch file is: an HTML page, other text, or unknown bytes."""
    text = _text_head(head)
    if text is None:
        return (
            f"{path} is not a PyTorch checkpoint (it starts with the bytes {head[:8]!r}); "
            "pass the model.ckpt written by anomalib training."
        )
    if "<html" in text.lower() or text.lstrip().lower().startswith("<!doctype html"):
        return (
            f"{path} is an HTML page, not a checkpoint (probably an error or login page saved by a failed download); "
            "download the model.ckpt again and check the link and your access."
        )
    first_line = text.strip().splitlines()[0][:60] if text.strip() else ""
    return (
        f"{path} is a text file (it starts with {first_line!r}), not a checkpoint; "
        "pass the model.ckpt written by anomalib training."
    )


def _check_file_bytes(path: str | Path) -> None:
    """Raise :class:`CheckpointFormatError` if :func:`describe_file_problem` finds a problem."""
    problem = describe_file_problem(path)
    if problem is not None:
        raise CheckpointFormatError(problem)


def _is_reference_state_dict(keys: list[str]) -> bool:
    prefixes = tuple(PREFIX_MAP)
    return any(key.removeprefix("module.").startswith(prefixes) for key in keys)


def describe_checkpoint_problem(checkpoint: object, source: str | Path) -> str | None:
    """Why ``checkpoint`` (a loaded file) is not an EA2D Lightning checkpoint, or ``None`` if it is one.

    Example:
        >>> describe_checkpoint_problem({"sa1.gamma": torch.zeros(1)}, "ref.pth")  # doctest: +ELLIPSIS
        "ref.pth is a state dict of the paper's reference EA2D code...convert_reference_state_dict..."
    """
    if not isinstance(checkpoint, Mapping):
        return f"{source} holds a {type(checkpoint).__name__}, not a checkpoint; pass a model.ckpt written by training."
    state = checkpoint.get("state_dict")
    if not isinstance(state, Mapping):
        keys = [str(key) for key in checkpoint]
        if _is_reference_state_dict(keys):
            return (
                f"{source} is a state dict of the paper's reference EA2D code, not an anomalib checkpoint; "
                f"convert it with convert_reference_state_dict: {_CONVERT_HINT}."
            )
        if any(key.startswith("branches.") for key in keys):
            return (
                f"{source} is an EA2DModel state dict, not an anomalib checkpoint; load it with "
                "EA2D(backbone=..., pre_trained=False).model.load_state_dict(torch.load(path, weights_only=True))."
            )
        return (
            f"{source} is not a Lightning checkpoint (it has no 'state_dict'); pass a model.ckpt written by anomalib "
            "training, or convert a reference EA2D state dict with convert_reference_state_dict."
        )
    keys = [str(key) for key in state]
    if not all(any(key.startswith(prefix) for key in keys) for prefix in EA2D_STATE_PREFIXES):
        parts = sorted({".".join(key.split(".")[:2]) for key in keys if key.startswith("model.")})
        shown = ", ".join(parts[:6]) + (" ..." if len(parts) > 6 else "")
        return (
            f"{source} is a checkpoint of another model (its weights are {shown or 'not under model.'}; EA2D's are "
            "model.encoder and model.branches); load it with the model class that trained it, or convert a "
            "reference EA2D state dict with convert_reference_state_dict."
        )
    return None


def _unsafe_globals_message(path: str | Path, error: Exception) -> str:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - only used to word the message
        names = []
    models = sorted(
        {name.split(".")[3] for name in names if name.startswith(("anomalib.models.image.", "anomalib.models.video."))}
    )
    shown = ", ".join(names[:4]) or str(error).splitlines()[0]
    if models:
        return (
            f"{path} cannot be loaded with weights_only=True because it holds Python objects ({shown}): it looks like "
            f"a checkpoint of anomalib's {', '.join(models)}, not of EA2D; load it with that model's class."
        )
    return (
        f"{path} cannot be loaded with weights_only=True because it holds Python objects ({shown}), which EA2D "
        "checkpoints never hold; if it is another model's checkpoint, load it with that model's class, and if you "
        "trust the file, pass weights_only=False."
    )


def check_checkpoint_file(path: str | Path, weights_only: bool | None = None) -> None:
    """Raise :class:`CheckpointFormatError` if ``path`` is not an EA2D Lightning checkpoint.

    The file is opened memory-mapped, so tensors are not read into memory.

    Args:
        path: The checkpoint file.
        weights_only: As for ``torch.load``; ``False`` allows arbitrary Python objects (trusted files only).

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        CheckpointFormatError: If the file is a reference state dict, another model's checkpoint, ...
    """
    path = Path(path)
    if not path.is_file():
        msg = f"Checkpoint file {path} does not exist; pass the model.ckpt written by training (see weights/lightning)."
        raise FileNotFoundError(msg)
    _check_file_bytes(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=weights_only is not False, mmap=True)
    except pickle.UnpicklingError as error:
        raise CheckpointFormatError(_unsafe_globals_message(path, error)) from error
    except RuntimeError:  # not a zip file (legacy format): mmap impossible, load normally
        checkpoint = torch.load(path, map_location="cpu", weights_only=weights_only is not False)
    problem = describe_checkpoint_problem(checkpoint, path)
    if problem is not None:
        raise CheckpointFormatError(problem)


def check_not_reference_state_dict(state_dict: Mapping[str, Any]) -> None:
    """Raise :class:`CheckpointFormatError` if ``state_dict`` has the reference code's key names.

    Example:
        >>> check_not_reference_state_dict({"encoder.conv1.weight": torch.zeros(1)})
    """
    if _is_reference_state_dict([str(key) for key in state_dict]):
        msg = (
            "This state dict has the key names of the paper's reference EA2D code (edc_encoder., sa1., ...); "
            "convert it first: model.load_state_dict(convert_reference_state_dict(state_dict))."
        )
        raise CheckpointFormatError(msg)


class GuardedCheckpointIO(CheckpointIO):
    """Checkpoint IO that checks loaded files with :func:`describe_checkpoint_problem` (saving unchanged).

    Args:
        inner: The checkpoint IO that does the work (the strategy's own).
    """

    def __init__(self, inner: CheckpointIO) -> None:
        self.inner = inner

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:  # noqa: ANN401
        """Save through the inner checkpoint IO."""
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)

    def load_checkpoint(
        self,
        path: Any,  # noqa: ANN401
        map_location: Callable | None = None,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Load through the inner checkpoint IO, then raise a clear error if it is no EA2D checkpoint."""
        kwargs: dict[str, Any] = {"weights_only": weights_only}
        if map_location is not None:
            kwargs["map_location"] = map_location
        if isinstance(path, str | Path) and Path(path).is_file():  # a missing path keeps Lightning's own message
            _check_file_bytes(path)
        try:
            checkpoint = self.inner.load_checkpoint(path, **kwargs)
        except pickle.UnpicklingError as error:
            raise CheckpointFormatError(_unsafe_globals_message(path, error)) from error
        problem = describe_checkpoint_problem(checkpoint, path)
        if problem is not None:
            raise CheckpointFormatError(problem)
        return checkpoint

    def remove_checkpoint(self, path: Any) -> None:  # noqa: ANN401
        """Remove through the inner checkpoint IO."""
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        """Tear down the inner checkpoint IO."""
        self.inner.teardown()


def guard_trainer_checkpoints(trainer: Trainer | None) -> None:
    """Make ``trainer`` check the files it loads as checkpoints through :class:`GuardedCheckpointIO` (idempotent).

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        >>> guard_trainer_checkpoints(trainer)
        >>> type(trainer.strategy.checkpoint_io).__name__
        'GuardedCheckpointIO'
    """
    if trainer is None:
        return
    strategy = trainer.strategy
    if not isinstance(strategy.checkpoint_io, GuardedCheckpointIO):
        strategy.checkpoint_io = GuardedCheckpointIO(strategy.checkpoint_io)


class OfflineCheckpointLoading:
    """Mixin for a LightningModule: ``load_from_checkpoint`` checks the file and needs no ImageNet weights.

    ``pre_trained`` and ``backbone_weights`` default to ``False``/``None`` when loading (the checkpoint
    holds the encoder's weights), so loading works without network or the original weight file. A
    file that is not a checkpoint of the class (a reference-code state dict, another model's
    checkpoint, a text file) raises :class:`CheckpointFormatError` saying what it is and what to do.
    """

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,  # noqa: ANN401
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,  # noqa: ANN401
    ) -> Any:  # noqa: ANN401
        """Check ``checkpoint_path``, then load it with Lightning, without downloading ImageNet weights."""
        check_checkpoint_file(checkpoint_path, weights_only=weights_only)
        kwargs.setdefault("pre_trained", False)
        kwargs.setdefault("backbone_weights", None)
        return super().load_from_checkpoint(  # type: ignore[misc]
            checkpoint_path,
            map_location=map_location,
            hparams_file=hparams_file,
            strict=strict,
            weights_only=weights_only,
            **kwargs,
        )


__all__ = [
    "CheckpointFormatError",
    "OfflineCheckpointLoading",
    "GuardedCheckpointIO",
    "check_checkpoint_file",
    "check_not_reference_state_dict",
    "describe_checkpoint_problem",
    "describe_file_problem",
    "guard_trainer_checkpoints",
]
