"""Ranking metrics computed by hand from lists of scores, to check the metrics a run logs against its files."""

from __future__ import annotations

from collections.abc import Sequence


def auroc(normal: Sequence[float], abnormal: Sequence[float]) -> float:
    """Probability that an abnormal score is above a normal one (ties count half)."""
    wins = sum((a > n) + 0.5 * (a == n) for a in abnormal for n in normal)
    return wins / (len(normal) * len(abnormal))


def average_precision(normal: Sequence[float], abnormal: Sequence[float]) -> float:
    """Step-wise average precision: the mean, over abnormal samples, of the precision at their score."""
    scores = [*normal, *abnormal]
    total = 0.0
    for a in abnormal:
        flagged = [s for s in scores if s >= a]
        total += sum(1 for b in abnormal if b >= a) / len(flagged)
    return total / len(abnormal)


def split_by_label(rows: Sequence[dict[str, str]], score: str = "score") -> tuple[list[float], list[float]]:
    """The ``score`` column of CSV rows, split into label 0 and label 1 (unlabelled rows left out)."""
    normal = [float(r[score]) for r in rows if r["label"] == "0"]
    abnormal = [float(r[score]) for r in rows if r["label"] == "1"]
    return normal, abnormal
