"""The run report's volume table, read from what :class:`~anomalib_ea2d.data.volumes.VolumeResults` wrote.

For a run on :class:`~anomalib_ea2d.data.MedicalVolumes`, the report lists every tested volume
(raw and normalised score, label, decision, number of slices, a link to its NIfTI anomaly map)
from ``volume_scores.csv``, and draws for some of them (wrong decisions first, then the highest
scores; at most ``max_overlays``) a thumbnail of the map over the mid-lesion slice: the middle one
of the slices whose mask holds lesion voxels, or, without lesion, the slice that scored highest.
The volume scores it returns are those ``volume_AUROC`` ranks.

Example:
    >>> mid_lesion_slice({3: (0.2, 1), 4: (0.9, 1), 5: (0.1, 1), 9: (0.95, 0)})
    (4, 'mid-lesion')
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from lightning.pytorch import Trainer

from anomalib_ea2d.callbacks.volume_results import MAP_SUFFIX, SCORES_FILE, SLICE_SCORES_FILE, VolumeResults
from anomalib_ea2d.visualization.report.page import VolumeRow
from anomalib_ea2d.visualization.report.plots import thumbnail

logger = logging.getLogger(__name__)


@dataclass
class VolumeTable:
    """The volume rows of the page and the labelled volume scores behind them."""

    rows: list[VolumeRow]
    scores: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    folder: Path


def _number(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _integer(text: str) -> int | None:
    return int(text) if text not in ("", None) else None


def mid_lesion_slice(slices: dict[int, tuple[float, int | None]]) -> tuple[int, str]:
    """The slice to show from ``{index: (raw score, label)}``: the middle lesion slice, else the top-scoring one."""
    lesion = sorted(index for index, (_, label) in slices.items() if label == 1)
    if lesion:
        return lesion[len(lesion) // 2], "mid-lesion"
    return max(slices, key=lambda index: slices[index][0]), "highest slice score"


def results_folder(trainer: Trainer) -> Path | None:
    """Folder of the trainer's per-volume results, if a :class:`VolumeResults` wrote any."""
    callback = next((c for c in trainer.callbacks if isinstance(c, VolumeResults)), None)
    if callback is None:
        return None
    folder = callback.output_dir or Path(trainer.default_root_dir) / "volumes"
    return folder if (folder / SCORES_FILE).is_file() else None


def _overlay(record: Any, map_path: Path, index: int, size: int) -> bytes:  # noqa: ANN401
    values = nib.load(map_path).dataobj
    plane = record.geometry.read(values, index).astype(np.float32)
    return thumbnail(record.image(index), plane, record.mask_slice(index), size=size)


def read_volume_table(trainer: Trainer, report_dir: Path, max_overlays: int = 48, size: int = 96) -> VolumeTable | None:
    """Rows for every volume in the trainer's ``volume_scores.csv`` (``None`` when the run tested no volumes).

    Args:
        trainer: The trainer after ``test``.
        report_dir: Folder of the report (links to the maps are relative to it).
        max_overlays: Volumes drawn as a thumbnail at most.
        size: Thumbnail panel size in pixels.
    """
    folder = results_folder(trainer)
    if folder is None:
        return None
    with (folder / SCORES_FILE).open(newline="") as handle:
        table = list(csv.DictReader(handle))
    slices: dict[str, dict[int, tuple[float, int | None]]] = {}
    if (folder / SLICE_SCORES_FILE).is_file():
        with (folder / SLICE_SCORES_FILE).open(newline="") as handle:
            for row in csv.DictReader(handle):
                slices.setdefault(row["volume"], {})[int(row["slice"])] = (float(row["score"]), _integer(row["label"]))
    records = getattr(trainer.datamodule, "volume_records", {}) if trainer.datamodule is not None else {}
    rows = [
        VolumeRow(
            name=row["volume"],
            score=float(row["score"]),
            normalized_score=_number(row["normalized_score"]),
            prediction=_integer(row["prediction"]),
            label=_integer(row["label"]),
            slices=int(row["slices"]),
        )
        for row in table
    ]
    for row, source in zip(rows, table, strict=True):
        map_path = folder / f"{row.name}{MAP_SUFFIX}"
        if map_path.is_file():
            row.map_href = Path(os.path.relpath(map_path, report_dir)).as_posix()
        row.overlay_note = source["path"]
    order = sorted(
        range(len(rows)),
        key=lambda i: (rows[i].prediction is None or rows[i].label is None or rows[i].prediction == rows[i].label,
                       -rows[i].score),
    )  # fmt: skip
    for i in order[:max_overlays]:
        row, record = rows[i], records.get(table[i]["path"])
        if record is None or not row.map_href or not slices.get(row.name):
            continue
        index, why = mid_lesion_slice(slices[row.name])
        try:
            row.overlay = _overlay(record, folder / f"{row.name}{MAP_SUFFIX}", index, size)
        except (OSError, ValueError) as error:  # a map removed or rewritten since: the row stays, without picture
            logger.warning("Run report: no overlay of volume %s (%s).", row.name, error)
            continue
        row.overlay_note = f"{record.geometry.axis} slice {index} ({why})"
    rows.sort(key=lambda row: -row.score)
    labelled = [row for row in rows if row.label is not None]
    return VolumeTable(
        rows=rows,
        scores=np.array([row.score for row in labelled]),
        labels=np.array([row.label for row in labelled]),
        predictions=np.array([-1 if row.prediction is None else row.prediction for row in labelled]),
        folder=folder,
    )


__all__ = ["VolumeTable", "mid_lesion_slice", "read_volume_table", "results_folder"]
