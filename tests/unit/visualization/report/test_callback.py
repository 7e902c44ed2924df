"""``RunReport`` driven batch by batch as Lightning drives it: thousands of images, bounded memory, a small file."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from anomalib.data import ImageBatch

from anomalib_ea2d import RunReport
from anomalib_ea2d.visualization.report.page import SECTIONS
from tests.helpers.ranking import auroc

IMAGES, BATCH, SIZE = 3000, 100, 64


def _batch(index: int, generator: torch.Generator) -> ImageBatch:
    labels = (torch.rand(BATCH, generator=generator) < 0.3).long()
    scores = torch.randn(BATCH, generator=generator) + 1.2 * labels
    masks = torch.zeros(BATCH, SIZE, SIZE, dtype=torch.bool)
    masks[labels.bool(), 20:30, 20:30] = True
    return ImageBatch(
        image=torch.rand(BATCH, 3, SIZE, SIZE, generator=generator),
        gt_label=labels,
        gt_mask=masks,
        pred_score=scores,
        anomaly_map=torch.rand(BATCH, 1, SIZE, SIZE, generator=generator) + masks[:, None].float(),
        image_path=[f"set/{index * BATCH + i:05d}.png" for i in range(BATCH)],
    )


def test_thousands_of_images_keep_bounded_state_and_write_a_small_report(tmp_path: Path) -> None:
    trainer = SimpleNamespace(
        callbacks=[], is_global_zero=True, default_root_dir=str(tmp_path), datamodule=None, ckpt_path=None
    )
    pl_module = SimpleNamespace(post_processor=None)
    report = RunReport(cases=6, pixel_sample=20_000)
    generator = torch.Generator().manual_seed(0)
    report.on_test_epoch_start(trainer, pl_module)  # type: ignore[arg-type]
    batches = []
    for index in range(IMAGES // BATCH):
        batch = _batch(index, generator)
        report.on_test_batch_end(trainer, pl_module, batch, batch, index)  # type: ignore[arg-type]
        batch.pred_label = batch.pred_score > 0.8  # what the post-processor does after this callback
        batches.append(batch)
    report.on_test_epoch_end(trainer, pl_module)  # type: ignore[arg-type]

    scores = torch.cat([b.pred_score for b in batches]).numpy()
    labels = torch.cat([b.gt_label for b in batches]).numpy().astype(bool)
    flagged = scores > 0.8
    trainer.callback_metrics = {"image_AUROC": torch.tensor(auroc(scores[~labels], scores[labels]))}
    report.on_test_end(trainer, pl_module)  # type: ignore[arg-type]

    assert report.path == tmp_path / "report.html"
    page = report.path.read_text()
    assert all(f'<section id="{section}">' in page for section in SECTIONS)
    assert report.path.stat().st_size < 400 * 1024  # thumbnails of 12 images, four figures
    assert len(re.findall(r'class="case"', page)) == 12
    content = report.content
    assert content is not None
    # the worst mistakes: the highest-scoring flagged normals, the lowest-scoring missed lesions
    expected_fp = np.sort(scores[~labels & flagged])[::-1][:6]
    expected_fn = np.sort(scores[labels & ~flagged])[:6]
    assert [case.score for case in content.false_positives] == pytest.approx(expected_fp.tolist())
    assert [case.score for case in content.false_negatives] == pytest.approx(expected_fn.tolist())
    rows = {row.name: row for row in content.metrics}
    assert rows["image_AUROC"].report == pytest.approx(rows["image_AUROC"].logged, abs=1e-6)
    pixel = rows["pixel_AUROC"]
    assert "sample of 40000" in pixel.note  # 3000 * 64 * 64 pixels, 20000 kept per class
    assert "12288000 pixels" in content.curves_note


def test_bad_settings_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="cases must be >= 1"):
        RunReport(cases=0)
    with pytest.raises(ValueError, match="max_volume_overlays must be >= 0"):
        RunReport(max_volume_overlays=-1)
