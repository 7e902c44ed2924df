"""ROC/PR curves and areas of the run report against scikit-learn, and the bounded pixel sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from anomalib_ea2d.visualization.report.curves import StratifiedSample, curve_points, rates_at


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_areas_equal_scikit_learn_with_ties_and_any_range(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(40.0, 25.0, 300) + 15 * labels, 0)  # raw scale, many ties
    points = curve_points(scores, labels)
    assert points.auroc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert points.average_precision == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert points.fpr[0] == points.tpr[0] == 0.0
    assert points.fpr[-1] == points.tpr[-1] == 1.0
    assert np.all(np.diff(points.thresholds) < 0)  # one point per distinct score, highest first


def test_class_weights_keep_the_roc_and_reweight_precision() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = rng.random(200) + 0.3 * labels
    weights = np.where(labels == 1, 1.0, 10.0)  # each normal stands for ten
    weighted = curve_points(scores, labels, weights)
    assert weighted.auroc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    expected = average_precision_score(labels, scores, sample_weight=weights)
    assert weighted.average_precision == pytest.approx(expected, abs=1e-12)


def test_one_class_or_misaligned_input_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="both normal"):
        curve_points(np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="one label per score"):
        curve_points(np.array([0.1, 0.2]), np.array([1]))


def test_rates_at_the_decisions() -> None:
    sensitivity, specificity = rates_at(np.array([1, 1, 0, 1, 0, 0]), np.array([1, 1, 1, 0, 0, 0]))
    assert (sensitivity, specificity) == pytest.approx((2 / 3, 2 / 3))


def test_sample_is_the_whole_set_below_capacity() -> None:
    sample = StratifiedSample(capacity=1000)
    values = torch.rand(2, 1, 8, 8)
    masks = torch.rand(2, 8, 8) > 0.8
    sample.update(values, masks)
    kept, labels, weights = sample.arrays()
    assert sample.exact
    assert sorted(kept[labels == 1]) == pytest.approx(sorted(values.flatten()[masks.flatten()].double().tolist()))
    assert np.all(weights == 1.0)


def test_sample_stays_bounded_and_uniform_over_many_batches() -> None:
    sample = StratifiedSample(capacity=500, seed=1)
    for batch in range(40):  # 40 x 1000 values, 10 % abnormal
        values = torch.arange(batch * 1000, (batch + 1) * 1000, dtype=torch.float64)
        sample.update(values, (values % 10) == 0)
    kept, labels, weights = sample.arrays()
    assert not sample.exact
    assert sample.totals == [36_000, 4_000]
    assert [int(np.sum(labels == 0)), int(np.sum(labels == 1))] == [500, 500]
    assert weights[labels == 0] == pytest.approx(36_000 / 500)
    assert weights[labels == 1] == pytest.approx(4_000 / 500)
    # uniform over the stream: the kept normal values' mean is near the stream's (about 20000)
    assert abs(kept[labels == 0].mean() - 20_000) < 2_000
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        StratifiedSample(capacity=0)
