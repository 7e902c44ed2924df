"""The plain ``anomalib`` command with MedicalVolumes (train = fit + test, predict), the README's short
``anomalib predict --data <folder of volumes>``, and anomalib's own BMAD."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.helpers.bmad import make_fake_bmad
from tests.helpers.volumes import head, write_dicom_series, write_nifti_set
from tests.integration.test_ea2d_cli import ANOMALIB, MODEL_ARGS, TRAINER_ARGS, _run

VOLUME_ARGS = [
    "--data", "anomalib_ea2d.data.MedicalVolumes", "--data.name", "tinyvolumes",
    "--data.normal_dir", "train/good", "--data.abnormal_dir", "test/lesion", "--data.normal_test_dir", "test/good",
    "--data.mask_dir", "ground_truth/lesion", "--data.slice_range", "[0.3, 0.7]", "--data.seed", "0",
    "--data.num_workers", "0", "--data.train_batch_size", "8", "--data.volume_score", "top_k_mean",
    "--data.top_k", "2",
]  # fmt: skip


SPLIT_MESSAGES = ("No normal test volumes", "moving", "training volumes")
"""Words of the messages about splits, which a predict run must not show."""
DATAMODULE_LOG = " - anomalib_ea2d.data.volumes.datamodule - "
"""How a record of the datamodule's logger starts in anomalib's plain log format."""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("volcli")
    write_nifti_set(root / "data", train=2, test_normal=2, test_abnormal=2)
    return root


@pytest.fixture(scope="module")
def trained(workdir: Path) -> tuple[str, Path]:
    """``anomalib train`` (fit + test) on the tiny volumes: its output and the checkpoint it wrote."""
    output = _run(
        ANOMALIB, "train", *MODEL_ARGS, *VOLUME_ARGS, "--data.root", str(workdir / "data"), *TRAINER_ARGS,
        "--trainer.max_steps", "2", "--default_root_dir", str(workdir / "results"), cwd=workdir,
    )  # fmt: skip
    return output.stdout + output.stderr, sorted((workdir / "results").rglob("*.ckpt"))[-1]


def _rows(scores: Path) -> list[dict[str, str]]:
    with scores.open() as handle:
        return list(csv.DictReader(handle))


def test_train_and_predict_write_volume_results(workdir: Path, trained: tuple[str, Path]) -> None:
    text, checkpoint = trained
    assert "volume_AUROC" in text
    assert "pixel_AUROC" in text
    (scores,) = list((workdir / "results").rglob("volume_scores.csv"))
    rows = _rows(scores)
    assert sorted(row["label"] for row in rows) == ["0", "1"]
    slice_scores = _rows(scores.parent / "slice_scores.csv")
    for row in rows:
        own = sorted((float(s["score"]) for s in slice_scores if s["volume"] == row["volume"]), reverse=True)
        assert float(row["score"]) == pytest.approx(sum(own[:2]) / 2, rel=1e-5)  # mean of the top 2
        written = nib.load(scores.parent / f"{row['volume']}_anomaly_map.nii.gz")
        assert written.shape == nib.load(row["path"]).shape

    # test/good's volumes are named like the training volumes (good_00, good_01): names are kept,
    # and predicting reads no training volume and makes no split
    output = _run(
        ANOMALIB, "predict", *MODEL_ARGS, *VOLUME_ARGS, "--data.root", str(workdir / "data"),
        "--data.predict_dir", "test/good", *TRAINER_ARGS, "--ckpt_path", str(checkpoint),
        "--default_root_dir", str(workdir / "predict"), cwd=workdir,
    )  # fmt: skip
    text = output.stdout + output.stderr
    for message in (*SPLIT_MESSAGES, "renamed"):
        assert message not in text
    maps = sorted(p.name for p in (workdir / "predict").rglob("*_anomaly_map.nii.gz"))
    assert maps == ["good_00_anomaly_map.nii.gz", "good_01_anomaly_map.nii.gz"]
    (predicted,) = list((workdir / "predict").rglob("volume_scores.csv"))
    rows = _rows(predicted)
    assert {row["label"] for row in rows} == {""}  # unlabelled
    assert {row["volume"]: Path(row["path"]).name for row in rows} == {
        "good_00": "good_00.nii.gz",
        "good_01": "good_01.nii.gz",
    }


def test_readme_short_predict_on_a_folder_of_volumes(workdir: Path, trained: tuple[str, Path]) -> None:
    """``anomalib predict --model EA2D --data <folder> --ckpt_path ...`` on NIfTI files and a DICOM series.

    Two inputs share the stem ``mni_t1`` (``.nii`` and ``.nii.gz``): one keeps it, the other's outputs
    are renamed, which one log line says, and the CSV's ``path`` column names each source.
    """
    folder = workdir / "new_scans"
    folder.mkdir()
    affine = np.diag([1.2, 1.0, 1.5, 1.0])
    nib.save(nib.Nifti1Image(head(seed=7), affine), folder / "scan_a.nii.gz")
    nib.save(nib.Nifti1Image(head(seed=8), affine), folder / "mni_t1.nii")
    nib.save(nib.Nifti1Image(head(seed=9), affine), folder / "mni_t1.nii.gz")
    write_dicom_series(folder / "ct_0042", np.round(head(seed=10)).astype(np.int16), modality="MR")
    output = _run(
        ANOMALIB, "predict", *MODEL_ARGS, "--data", str(folder), *TRAINER_ARGS, "--ckpt_path", str(trained[1]),
        "--default_root_dir", str(workdir / "short"), cwd=workdir,
    )  # fmt: skip
    text = output.stdout + output.stderr
    assert "Found 0 images" not in text
    for message in SPLIT_MESSAGES:
        assert message not in text
    (scores,) = list((workdir / "short").rglob("volume_scores.csv"))
    assert scores.parent.parent.name == "latest"
    assert scores.parent.parent.parent.name == "new_scans"  # results/EA2D/<folder name>/latest/volumes
    sources = {row["volume"]: Path(row["path"]) for row in _rows(scores)}
    assert sources == {
        "scan_a": folder / "scan_a.nii.gz",
        "mni_t1": folder / "mni_t1.nii",
        "mni_t1_2": folder / "mni_t1.nii.gz",
        "ct_0042": folder / "ct_0042",
    }
    for name, source in sources.items():
        written = nib.load(scores.parent / f"{name}_anomaly_map.nii.gz")
        expected = head().shape if source.is_dir() else nib.load(source).shape
        assert written.shape == expected, name
    # one log record; its plain copy is one line (the console's copy is wrapped, so it is not counted)
    renames = [line for line in text.splitlines() if DATAMODULE_LOG in line and "renamed" in line]
    assert len(renames) == 1, renames
    assert f"{folder / 'mni_t1.nii.gz'} -> mni_t1_2" in renames[0]


def test_bmad_fit_and_test(tmp_path: Path) -> None:
    make_fake_bmad(tmp_path / "BMAD")
    output = _run(
        ANOMALIB, "train", *MODEL_ARGS, "--data", "anomalib.data.BMAD", "--data.root", str(tmp_path / "BMAD"),
        "--data.category", "Brain", "--data.num_workers", "0", "--data.train_batch_size", "4", *TRAINER_ARGS,
        "--trainer.max_steps", "2", "--default_root_dir", str(tmp_path / "results"), cwd=tmp_path,
    )  # fmt: skip
    text = output.stdout + output.stderr
    assert "image_AUROC" in text
    assert "pixel_AUROC" in text
