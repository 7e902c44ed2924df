"""MedicalVolumes with anomalib's Engine and CLI: fit/test/predict of EA2D on tiny NIfTI volumes.

Checks what the user gets: ``volume_AUROC`` next to the image/pixel metrics, ``volume_scores.csv``
and one NIfTI anomaly map per tested or predicted volume, on the input's grid and affine.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from anomalib.engine import Engine

from anomalib_ea2d import EA2D
from anomalib_ea2d.data import MedicalVolumes
from tests.helpers.engine import cpu_engine
from tests.helpers.ranking import auroc, average_precision, split_by_label
from tests.helpers.volumes import SHAPE, head, write_dicom_series, write_nifti_set

SIZE = 64
DATA_ARGS = {
    "name": "tinyvolumes",
    "normal_dir": "train/good",
    "abnormal_dir": "test/lesion",
    "normal_test_dir": "test/good",
    "mask_dir": "ground_truth/lesion",
    "slice_range": (0.3, 0.7),  # a few slices per volume keep the test fast
}


@pytest.fixture(scope="module")
def volume_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_nifti_set(tmp_path_factory.mktemp("volumes") / "data", train=2, test_normal=2, test_abnormal=2)


@pytest.fixture(scope="module")
def fitted(volume_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[EA2D, MedicalVolumes, Engine]:
    """EA2D fitted for two steps on the tiny volumes (validated, so its thresholds are set)."""
    torch.manual_seed(0)
    datamodule = MedicalVolumes(
        root=volume_root, **DATA_ARGS, train_batch_size=8, eval_batch_size=32, num_workers=0, seed=0
    )
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE)
    engine = cpu_engine(tmp_path_factory.mktemp("fit"), max_steps=2, check_val_every_n_epoch=None, val_check_interval=2)
    engine.fit(model=model, datamodule=datamodule)
    return model, datamodule, engine


def test_engine_fit_test_predict_write_volume_results(
    fitted: tuple[EA2D, MedicalVolumes, Engine], tmp_path: Path
) -> None:
    model, datamodule, engine = fitted
    (results,) = engine.test(model=model, datamodule=datamodule)
    assert 0.0 <= results["pixel_AUROC"] <= 1.0

    out = Path(engine.trainer.default_root_dir) / "volumes"
    tested = datamodule.test_data.volumes
    assert len(tested) == 2  # half of the 2 + 2 test volumes validate (by volume, label-balanced)
    assert set(tested).isdisjoint(datamodule.val_data.volumes)
    with (out / "volume_scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["path"] for row in rows) == sorted(tested)
    assert sorted(row["label"] for row in rows) == ["0", "1"]
    with (out / "slice_scores.csv").open() as handle:
        slice_scores = list(csv.DictReader(handle))
    # The logged metrics are those of the raw scores the files hold (one scale, unclipped).
    assert results["image_AUROC"] == pytest.approx(auroc(*split_by_label(slice_scores)), abs=1e-6)
    assert results["volume_AUROC"] == pytest.approx(auroc(*split_by_label(rows)), abs=1e-6)
    assert results["volume_AveragePrecision"] == pytest.approx(average_precision(*split_by_label(rows)), abs=1e-6)
    _check_slice_labels_and_scales(slice_scores, datamodule, model)
    for row in rows:
        own = [float(s["score"]) for s in slice_scores if s["volume"] == row["volume"]]
        assert float(row["score"]) == pytest.approx(max(own), rel=1e-5)  # volume score = max of slice scores
        source = nib.load(row["path"])
        result = nib.load(out / f"{row['volume']}_anomaly_map.nii.gz")
        assert result.shape == source.shape
        assert result.get_data_dtype() == np.float32
        np.testing.assert_allclose(result.affine, source.affine, atol=1e-5)
        values = np.asarray(result.dataobj)
        record = datamodule.volume_records[row["path"]]
        scored = np.zeros(SHAPE[2], bool)
        scored[record.slices] = True  # axial = third axis for these RAS volumes
        assert np.abs(values[:, :, ~scored]).max() == 0.0  # unscored slices are 0
        assert (np.abs(values[:, :, scored]).reshape(-1, scored.sum()).max(0) > 0).all()
        assert int(row["slices"]) == len(record.slices)
    # anomalib's visualiser filed its pictures under a folder per volume
    assert {p.parent.name for p in Path(engine.trainer.default_root_dir).glob("images/*/axial_*.png")} == {
        row["volume"] for row in rows
    }

    # predict on the test volumes (a fresh engine and output folder) writes the same numbers as test
    predict_dir = tmp_path / "predict"
    predictions = cpu_engine(predict_dir).predict(model=model, datamodule=datamodule)
    assert predictions
    written = sorted(predict_dir.rglob("*_anomaly_map.nii.gz"))
    assert len(written) == 2
    for path in written:
        np.testing.assert_allclose(
            np.asarray(nib.load(path).dataobj), np.asarray(nib.load(out / path.name).dataobj), atol=1e-6
        )
    (predicted_scores,) = predict_dir.rglob("slice_scores.csv")
    with predicted_scores.open() as handle:
        predicted = {(r["volume"], r["slice"]): r for r in csv.DictReader(handle)}
    assert set(predicted) == {(r["volume"], r["slice"]) for r in slice_scores}
    for row in slice_scores:
        again = predicted[row["volume"], row["slice"]]
        for column in ("score", "normalized_score"):
            assert float(again[column]) == pytest.approx(float(row[column]), rel=1e-5, abs=1e-7), column
        assert again["prediction"] == row["prediction"]


def _check_slice_labels_and_scales(slice_scores: list[dict[str, str]], datamodule: MedicalVolumes, model: EA2D) -> None:
    """Each slice's label is whether its mask holds lesion voxels; normalised = anomalib's scale of the raw score."""
    records = {record.name: record for record in datamodule.volume_records.values()}
    post = model.post_processor
    for row in slice_scores:
        record = records[row["volume"]]
        expected_label = record.slice_labels[record.slices.index(int(row["slice"]))]
        assert int(row["label"]) == int(expected_label)
        raw = torch.tensor(float(row["score"]))
        normalized = post._normalize(raw, post.image_min, post.image_max, post.image_threshold)
        assert float(row["normalized_score"]) == pytest.approx(float(normalized), abs=1e-5)
        assert row["prediction"] == str(int(float(row["normalized_score"]) > 0.5))
    assert {row["label"] for row in slice_scores} == {"0", "1"}


@pytest.mark.parametrize("kind", ["nifti file", "dicom series folder"])
def test_engine_predict_data_path_of_one_volume(
    fitted: tuple[EA2D, MedicalVolumes, Engine], tmp_path: Path, kind: str
) -> None:
    """``Engine.predict(data_path=...)`` (what ``anomalib predict --data`` calls) on a single volume."""
    volume = np.round(head(seed=5)).astype(np.int16)
    if kind == "nifti file":
        source = tmp_path / "sub-07_T1w.nii.gz"
        nib.save(nib.Nifti1Image(volume, np.eye(4)), source)
        name = "sub-07_T1w"
    else:
        source = write_dicom_series(tmp_path / "series_3", volume, modality="MR")
        name = "series_3"
    engine = cpu_engine(tmp_path / "out")
    predictions = engine.predict(model=fitted[0], data_path=source)
    assert predictions
    assert isinstance(engine.trainer.datamodule, MedicalVolumes)
    (scores,) = list((tmp_path / "out").rglob("volume_scores.csv"))
    with scores.open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["volume"], Path(row["path"]), row["label"]) == (name, source, "")
    assert nib.load(scores.parent / f"{name}_anomaly_map.nii.gz").shape == volume.shape
