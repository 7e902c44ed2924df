"""Metrics computed by hand from scores and labels, to check the metrics a run logs against what it wrote."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import rankdata


def auroc(normal: Sequence[float] | np.ndarray, abnormal: Sequence[float] | np.ndarray) -> float:
    """Probability that an abnormal score is above a normal one, ties counting half (Mann-Whitney U)."""
    normal, abnormal = np.asarray(normal, np.float64).ravel(), np.asarray(abnormal, np.float64).ravel()
    ranks = rankdata(np.concatenate([normal, abnormal]))  # average ranks: a tie counts half
    u = ranks[normal.size :].sum() - abnormal.size * (abnormal.size + 1) / 2
    return float(u / (normal.size * abnormal.size))


def average_precision(normal: Sequence[float], abnormal: Sequence[float]) -> float:
    """Step-wise average precision: the mean, over abnormal samples, of the precision at their score."""
    scores = [*normal, *abnormal]
    total = 0.0
    for a in abnormal:
        flagged = [s for s in scores if s >= a]
        total += sum(1 for b in abnormal if b >= a) / len(flagged)
    return total / len(abnormal)


def f1(predicted: Sequence[bool] | np.ndarray, actual: Sequence[bool] | np.ndarray) -> float:
    """``2 TP / (2 TP + FP + FN)`` of binary decisions."""
    predicted, actual = np.asarray(predicted, bool).ravel(), np.asarray(actual, bool).ravel()
    tp = np.sum(predicted & actual)
    return float(2 * tp / (2 * tp + np.sum(predicted & ~actual) + np.sum(~predicted & actual)))


def split_by_label(rows: Sequence[dict[str, str]], score: str = "score") -> tuple[list[float], list[float]]:
    """The ``score`` column of CSV rows, split into label 0 and label 1 (unlabelled rows left out)."""
    normal = [float(r[score]) for r in rows if r["label"] == "0"]
    abnormal = [float(r[score]) for r in rows if r["label"] == "1"]
    return normal, abnormal
