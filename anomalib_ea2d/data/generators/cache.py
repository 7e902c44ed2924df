"""What the synthetic brain generators share: parameters as the cache key, the manifest, the swap into place.

A generated set lives under ``root`` with a ``manifest.json`` that records the hash of its
parameters and how many files each folder holds. :func:`is_up_to_date` says whether ``root`` holds
exactly the set some parameters describe (then nothing is generated); otherwise a generator builds
the set in a sibling folder (:func:`staging_folder`) and :func:`swap_in` replaces only what an
earlier generation owns, so an interrupted run never leaves a half-written set that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

from anomalib_ea2d.data.layout import MANIFEST_NAME, TEST_LESION_DIR, TEST_NORMAL_DIR, TRAIN_DIR

SPLITS: tuple[tuple[str, str, bool], ...] = (
    ("train", TRAIN_DIR, False),
    ("test_normal", TEST_NORMAL_DIR, False),
    ("test_abnormal", TEST_LESION_DIR, True),
)
"""``(split, folder, with lesions)`` of every generated set; a split's position seeds its subjects' streams."""
SPLIT_NAMES: tuple[str, ...] = tuple(split for split, _, _ in SPLITS)
OWNED_FOLDERS: tuple[str, ...] = ("train", "test", "ground_truth")
"""Top-level folders of ``root`` that a generation owns (and replaces, with the manifest)."""


class GeneratorParams:
    """What the generators' frozen parameter dataclasses share: range pairs, the dictionary, the cache key.

    A subclass sets :attr:`VERSION` (bumped whenever its rendering changes, so cached sets made by
    older code are regenerated), :attr:`FILE_PATTERN` (the files it writes) and :attr:`PAIRS`
    (fields given as ``(low, high)``), and calls :meth:`store_pairs` first in its ``__post_init__``.
    """

    VERSION: ClassVar[int]
    FILE_PATTERN: ClassVar[str]
    PAIRS: ClassVar[tuple[str, ...]] = ()

    def store_pairs(self) -> None:
        """Check that every :attr:`PAIRS` field is a pair and store it as a tuple (lists come from YAML)."""
        for name in self.PAIRS:
            value = getattr(self, name)
            if len(value) != 2:
                msg = f"{type(self).__name__}.{name} must be a pair (low, high), got {value!r}."
                raise ValueError(msg)
            object.__setattr__(self, name, tuple(value))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of the parameters (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}  # type: ignore[call-overload]

    def digest(self) -> str:
        """Short hash of the parameters and the generator version; the cache key."""
        payload = json.dumps({"version": self.VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """Manifest of a generated set at ``root``, or ``None`` if there is none (or it is unreadable)."""
    try:
        return json.loads((Path(root) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(root: str | Path, params: GeneratorParams) -> bool:
    """Whether ``root`` holds a complete set generated with exactly ``params`` by this generator version."""
    manifest = read_manifest(root)
    if manifest is None or manifest.get("digest") != params.digest():
        return False
    counts = manifest.get("counts", {})
    pattern = params.FILE_PATTERN
    return all(len(list((Path(root) / folder).glob(pattern))) == counts.get(folder, -1) for folder in counts)


def check_writable(root: Path, what: str) -> None:
    """Refuse to generate into a folder that is not empty and holds no manifest (someone else's files).

    Raises:
        FileExistsError: Saying so.
    """
    if root.exists() and any(root.iterdir()) and read_manifest(root) is None:
        msg = (
            f"Refusing to write {what} into {root}: the folder is not empty and has no {MANIFEST_NAME}; "
            "point `root` at an empty or new folder."
        )
        raise FileExistsError(msg)


def staging_folder(root: Path, params: GeneratorParams) -> Path:
    """An empty sibling of ``root`` to build the set in (removed if an earlier run left it)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.tmp-{params.digest()}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def swap_in(staging: Path, root: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` into the finished set, then put the set in place of what an earlier generation owns."""
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).unlink(missing_ok=True)
    for top in OWNED_FOLDERS:
        shutil.rmtree(root / top, ignore_errors=True)
    for top in OWNED_FOLDERS:
        (staging / top).rename(root / top)
    (staging / MANIFEST_NAME).rename(root / MANIFEST_NAME)
    shutil.rmtree(staging, ignore_errors=True)


__all__ = [
    "OWNED_FOLDERS",
    "SPLITS",
    "SPLIT_NAMES",
    "GeneratorParams",
    "check_writable",
    "is_up_to_date",
    "read_manifest",
    "staging_folder",
    "swap_in",
]
