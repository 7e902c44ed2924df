"""The run report's page and pictures, from synthetic arrays: every section, embedded pictures, no network."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from anomalib_ea2d.visualization.report.assemble import RunData, build_content, metric_rows
from anomalib_ea2d.visualization.report.curves import StratifiedSample, curve_points
from anomalib_ea2d.visualization.report.page import SECTIONS, Case, ReportContent, VolumeRow, render_html
from anomalib_ea2d.visualization.report.plots import Histogram, curves_figure, histogram_figure, thumbnail
from anomalib_ea2d.visualization.report.volumes import mid_lesion_slice


def _size(picture: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(picture)).size


def test_thumbnail_is_two_small_panels_with_the_lesion_outlined() -> None:
    image = np.random.default_rng(0).random((256, 256))
    mask = np.zeros((256, 256), bool)
    mask[100:160, 100:160] = True
    picture = thumbnail(image, np.full((64, 64), 0.8), mask, size=96)
    assert _size(picture) == (96 * 2 + 2, 96)
    assert len(picture) < 20 * 1024  # noise compresses badly; still a few KiB
    pixels = np.asarray(Image.open(io.BytesIO(picture)).convert("RGB")).astype(int)
    green = (pixels[..., 1] > 180) & (pixels[..., 0] < 100)
    assert green[:, :96].sum() > 50  # the outline, on the left panel only
    assert green[:, 98:].sum() == 0


def test_figures_are_png_without_a_display() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    points = curve_points(rng.random(50) + labels, labels)
    assert curves_figure([("image", points, "0.9")]).startswith(b"\x89PNG")
    histogram = Histogram("image", rng.random(20), rng.random(20) + 1, threshold=0.9, note="sensitivity 1.0")
    assert histogram_figure([histogram, histogram]).startswith(b"\x89PNG")


def _content() -> ReportContent:
    png = thumbnail(np.zeros((8, 8)), np.zeros((8, 8)), None, size=16)
    return ReportContent(
        title="Test <run>",
        settings=[("model", "EA2D")],
        hyperparameters=[("backbone", "resnet18")],
        data=[("test images", "4")],
        curves=png,
        histograms=png,
        false_positives=[Case("good/001.png", 3.5, png, 0.9)],
        false_negatives=[Case("bad/<002>.png", 0.5, png, 0.1)],
        volumes=[VolumeRow("sub-01", 2.0, 0.8, 1, 0, 12, "volumes/sub-01_anomaly_map.nii.gz", png, "axial slice 6")],
    )


def test_page_holds_every_section_embedded_and_escaped() -> None:
    page = render_html(_content())
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert page.count('src="data:image/jpeg;base64,') == 5  # curves, histograms, two cases, one volume
    assert re.search(r"(src|href)=\"(https?:)?//", page) is None  # nothing is fetched
    assert "<script" not in page
    assert "<link" not in page
    assert "bad/&lt;002&gt;.png" in page
    assert "Test &lt;run&gt;" in page
    assert 'href="volumes/sub-01_anomaly_map.nii.gz"' in page
    assert "class=wrong" in page  # the normal volume that was flagged


def test_mid_lesion_slice_is_the_middle_lesion_slice_else_the_top_score() -> None:
    assert mid_lesion_slice({1: (0.1, 0), 2: (0.2, 1), 3: (0.3, 1), 4: (0.9, 1), 5: (0.95, 0)}) == (3, "mid-lesion")
    assert mid_lesion_slice({1: (0.1, 0), 2: (0.7, 0), 3: (0.3, None)}) == (2, "highest slice score")


def test_metric_rows_put_the_reports_numbers_next_to_the_logged_ones() -> None:
    scores = np.array([0.2, 0.8, 0.4, 0.9, 0.1, 0.3])
    labels = np.array([0, 1, 0, 1, 0, 1])
    run = RunData(scores=scores, labels=labels, decisions=(scores > 0.35).astype(int))
    rows = {row.name: row for row in metric_rows(run, {"image_AUROC": 0.5, "image_F1Score": 0.7}, None)}
    assert rows["image_AUROC"].report == pytest.approx(curve_points(scores, labels).auroc)
    assert rows["image_AUROC"].logged == 0.5
    assert rows["image_F1Score"].report is None  # logged only
    assert rows["image_Sensitivity"].report == pytest.approx(2 / 3)
    assert rows["image_Specificity"].report == pytest.approx(2 / 3)


def test_subsampled_pixel_curves_quote_the_logged_value(tmp_path: object) -> None:
    rng = np.random.default_rng(0)
    sample = StratifiedSample(capacity=100)
    import torch  # noqa: PLC0415

    sample.update(torch.tensor(rng.random(5000)), torch.tensor(rng.random(5000) < 0.1))
    run = RunData(scores=np.array([0.1, 0.9]), labels=np.array([0, 1]), decisions=np.array([0, 1]), pixels=sample)
    trainer = SimpleNamespace(callbacks=[], datamodule=None, default_root_dir=str(tmp_path), ckpt_path=None)
    content = build_content(run, trainer, SimpleNamespace(), tmp_path, {"pixel_AUROC": 0.4321})  # type: ignore[arg-type]
    assert "random sample of 200 of 5000 pixels" in content.curves_note
    assert "not a RawScoreEvaluator" in content.curves_note
    pixel = next(row for row in content.metrics if row.name == "pixel_AUROC")
    assert pixel.logged == 0.4321
    assert "sample of 200" in pixel.note
    assert content.volumes == []
    assert "no volumes" in content.volumes_note
