"""The plain ``anomalib`` command with MedicalVolumes (train = fit + test, predict) and with anomalib's own BMAD."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import pytest

from tests.helpers.bmad import make_fake_bmad
from tests.helpers.volumes import write_nifti_set
from tests.integration.test_ea2d_cli import ANOMALIB, MODEL_ARGS, TRAINER_ARGS, _run

VOLUME_ARGS = [
    "--data", "anomalib_ea2d.data.MedicalVolumes", "--data.name", "tinyvolumes",
    "--data.normal_dir", "train/good", "--data.abnormal_dir", "test/lesion", "--data.normal_test_dir", "test/good",
    "--data.mask_dir", "ground_truth/lesion", "--data.slice_range", "[0.3, 0.7]", "--data.seed", "0",
    "--data.num_workers", "0", "--data.train_batch_size", "8", "--data.volume_score", "top_k_mean",
    "--data.top_k", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("volcli")
    write_nifti_set(root / "data", train=2, test_normal=2, test_abnormal=2)
    return root


def test_train_and_predict_write_volume_results(workdir: Path) -> None:
    data = ["--data.root", str(workdir / "data")]
    output = _run(
        ANOMALIB, "train", *MODEL_ARGS, *VOLUME_ARGS, *data, *TRAINER_ARGS, "--trainer.max_steps", "2",
        "--default_root_dir", str(workdir / "results"), cwd=workdir,
    )  # fmt: skip
    text = output.stdout + output.stderr
    assert "volume_AUROC" in text
    assert "pixel_AUROC" in text
    (scores,) = list((workdir / "results").rglob("volume_scores.csv"))
    with scores.open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["label"] for row in rows) == ["0", "1"]
    with (scores.parent / "slice_scores.csv").open() as handle:
        slice_scores = list(csv.DictReader(handle))
    for row in rows:
        own = sorted((float(s["score"]) for s in slice_scores if s["volume"] == row["volume"]), reverse=True)
        assert float(row["score"]) == pytest.approx(sum(own[:2]) / 2, rel=1e-5)  # mean of the top 2
        written = nib.load(scores.parent / f"{row['volume']}_anomaly_map.nii.gz")
        assert written.shape == nib.load(row["path"]).shape

    checkpoint = sorted((workdir / "results").rglob("*.ckpt"))[-1]
    _run(
        ANOMALIB, "predict", *MODEL_ARGS, *VOLUME_ARGS, *data, "--data.predict_dir", "test/lesion", *TRAINER_ARGS,
        "--ckpt_path", str(checkpoint), "--default_root_dir", str(workdir / "predict"), cwd=workdir,
    )  # fmt: skip
    maps = sorted(p.name for p in (workdir / "predict").rglob("*_anomaly_map.nii.gz"))
    assert maps == ["lesion_00_anomaly_map.nii.gz", "lesion_01_anomaly_map.nii.gz"]
    (predicted,) = list((workdir / "predict").rglob("volume_scores.csv"))
    assert {row["label"] for row in csv.DictReader(predicted.open())} == {""}  # unlabelled


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
