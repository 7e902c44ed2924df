"""The run report through anomalib's ``Engine.test``: every section, and its numbers equal the logged metrics.

EA2D with the project's medical metrics and operating point on tiny images; anomalib's PaDiM with the
report as a plain trainer callback (any anomalib model); EA2D on tiny NIfTI volumes (the volume table,
links to the NIfTI maps, mid-lesion overlays, ``volume_AUROC``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from anomalib.models import Padim

from anomalib_ea2d import EA2D, RunReport, SpecificityPostProcessor
from anomalib_ea2d.data import MedicalVolumes
from anomalib_ea2d.visualization.report.page import SECTIONS
from tests.helpers.engine import cpu_engine
from tests.helpers.ranking import auroc, average_precision, split_by_label
from tests.helpers.tiny_data import make_tiny_disk_dataset, tiny_folder
from tests.helpers.volumes import write_nifti_set

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 64
RECOMPUTED = (
    "image_AUROC",
    "image_AveragePrecision",
    "image_Sensitivity",
    "image_Specificity",
    "pixel_AUROC",
    "pixel_AveragePrecision",
    "volume_AUROC",
    "volume_AveragePrecision",
)


def _engine(root: Path, report: RunReport, steps: int | None = 2) -> Engine:
    schedule = {"max_steps": steps, "check_val_every_n_epoch": None, "val_check_interval": steps} if steps else {}
    return cpu_engine(root, callbacks=[report], **schedule)


def _check_page_and_numbers(report: RunReport, results: dict[str, float]) -> dict[str, float]:
    """Every section is on the page; each recomputed metric equals the logged one (and is printed)."""
    page = report.path.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert report.content is not None
    rows = {row.name: row for row in report.content.metrics}
    checked = {}
    for name in RECOMPUTED:
        if name in results:
            assert rows[name].logged == pytest.approx(results[name], abs=1e-7), name
            assert rows[name].report == pytest.approx(results[name], abs=1e-6), name
            assert re.search(rf"<td>{name}</td><td class=num>{results[name]:.4f}</td>", page), name
            checked[name] = rows[name].report
    return checked


@pytest.fixture(scope="module")
def disk_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_disk_dataset(tmp_path_factory.mktemp("disk") / "data", size=SIZE)


def test_ea2d_report_equals_the_logged_metrics_and_the_scores_written(disk_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    datamodule = tiny_folder(disk_root)
    model = EA2D(
        backbone="resnet18",
        pre_trained=False,
        image_size=SIZE,
        metrics="medical",
        roi={"threshold": 0.05, "closing": 3, "erosion": 1},
        post_processor=SpecificityPostProcessor(),
    )
    report = RunReport(cases=3)
    engine = _engine(tmp_path, report)
    engine.fit(model=model, datamodule=datamodule)
    (results,) = engine.test(model=model, datamodule=datamodule)

    folder = Path(engine.trainer.default_root_dir)
    assert report.path == folder / "report.html"
    checked = _check_page_and_numbers(report, results)
    assert set(checked) == set(RECOMPUTED[:6])  # medical metrics: image and pixel AUROC/AP, the operating point
    with (folder / "image_scores.csv").open() as handle:
        scores = list(csv.DictReader(handle))
    normal, abnormal = split_by_label(scores)
    assert checked["image_AUROC"] == pytest.approx(auroc(normal, abnormal), abs=1e-6)
    assert checked["image_AveragePrecision"] == pytest.approx(average_precision(normal, abnormal), abs=1e-6)
    content = report.content
    assert content is not None
    wrong_normals = sorted(
        (float(r["score"]) for r in scores if r["label"] == "0" and r["prediction"] == "1"), reverse=True
    )
    missed = sorted(float(r["score"]) for r in scores if r["label"] == "1" and r["prediction"] == "0")
    assert [case.score for case in content.false_positives] == pytest.approx(wrong_normals[:3], rel=1e-6)
    assert [case.score for case in content.false_negatives] == pytest.approx(missed[:3], rel=1e-6)
    threshold = float(model.post_processor.image_threshold)
    assert ("image threshold (raw scale)", f"{threshold:.6g}") in content.settings
    assert content.histograms is not None
    assert content.curves is not None


def test_any_anomalib_model_gets_a_report_from_the_callback(disk_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    datamodule = tiny_folder(disk_root)
    model = Padim(
        backbone="resnet18",
        pre_trained=False,
        layers=["layer1"],
        n_features=32,
        post_processor=SpecificityPostProcessor(),
    )
    report = RunReport(output_dir=tmp_path / "report", pixel_sample=500_000)  # PaDiM's 256 px: keep every pixel
    engine = _engine(tmp_path / "run", report, steps=None)
    engine.fit(model=model, datamodule=datamodule)
    (results,) = engine.test(model=model, datamodule=datamodule)

    assert report.path == tmp_path / "report" / "report.html"
    checked = _check_page_and_numbers(report, results)
    assert {"image_AUROC", "pixel_AUROC"} <= set(checked)  # anomalib's default metric set, on raw scores
    assert report.content is not None
    assert report.content.title == "Padim test run report"
    pixel = next(row for row in report.content.metrics if row.name == "pixel_AUROC")
    assert pixel.note == "all raw pixel values"


def test_volume_report_lists_every_volume_with_its_map_and_overlay(tmp_path: Path) -> None:
    root = write_nifti_set(tmp_path / "data", train=2, test_normal=2, test_abnormal=2)
    torch.manual_seed(0)
    datamodule = MedicalVolumes(
        root=root,
        name="tinyvolumes",
        normal_dir="train/good",
        abnormal_dir="test/lesion",
        normal_test_dir="test/good",
        mask_dir="ground_truth/lesion",
        slice_range=(0.3, 0.7),
        train_batch_size=8,
        eval_batch_size=32,
        num_workers=0,
        seed=0,
    )
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE)
    report = RunReport()
    engine = _engine(tmp_path / "out", report)
    engine.fit(model=model, datamodule=datamodule)
    (results,) = engine.test(model=model, datamodule=datamodule)

    checked = _check_page_and_numbers(report, results)
    assert {"image_AUROC", "pixel_AUROC", "volume_AUROC", "volume_AveragePrecision"} <= set(checked)
    folder = Path(engine.trainer.default_root_dir)
    with (folder / "volumes" / "volume_scores.csv").open() as handle:
        written = {row["volume"]: row for row in csv.DictReader(handle)}
    assert report.content is not None
    rows = report.content.volumes
    assert sorted(row.name for row in rows) == sorted(written)
    page = report.path.read_text()
    for row in rows:
        assert float(written[row.name]["score"]) == pytest.approx(row.score, rel=1e-6)
        assert row.label == int(written[row.name]["label"])
        assert (folder / row.map_href).is_file()  # relative to the report, which sits in the results folder
        assert f'href="{row.map_href}"' in page
        assert row.overlay is not None
        expected = "mid-lesion" if row.label == 1 else "highest slice score"
        assert row.overlay_note.startswith("axial slice ")
        assert row.overlay_note.endswith(f"({expected})")
