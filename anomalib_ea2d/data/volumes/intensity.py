"""Intensity scaling of volume slices to ``[0, 1]``: per-volume percentiles (MRI) or a CT window (HU).

MRI intensities have no absolute unit, so each volume is scaled by its own percentiles inside the
foreground (default 0.5 % → 0, 99.5 % → 1, clipped). CT values are Hounsfield units (DICOM's
``RescaleSlope``/``RescaleIntercept`` already applied), so a fixed window ``(level, width)``
maps ``level - width/2`` → 0 and ``level + width/2`` → 1 for every volume alike.

Example:
    >>> import numpy as np
    >>> window = ct_window(40, 400)                       # soft-tissue window
    >>> window
    (-160.0, 240.0)
    >>> to_unit(np.array([-1000.0, 40.0, 3000.0]), window).tolist()
    [0.0, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Window = tuple[float, float]


def check_percentiles(percentiles: Sequence[float]) -> tuple[float, float]:
    """Return ``percentiles`` as a pair ``0 <= low < high <= 100``; raise otherwise."""
    if len(percentiles) != 2 or not 0 <= percentiles[0] < percentiles[1] <= 100:
        msg = f"percentiles must be a pair 0 <= low < high <= 100, got {percentiles!r}; e.g. percentiles=[0.5, 99.5]."
        raise ValueError(msg)
    return float(percentiles[0]), float(percentiles[1])


def check_window(window: Sequence[float] | None) -> Window | None:
    """Return ``window`` as ``(level, width)`` with ``width > 0`` (or ``None``); raise otherwise."""
    if window is None:
        return None
    if len(window) != 2 or not window[1] > 0:
        msg = f"window must be (level, width) in HU with width > 0, got {window!r}; e.g. window=[40, 400]."
        raise ValueError(msg)
    return float(window[0]), float(window[1])


def ct_window(level: float, width: float) -> Window:
    """``(low, high)`` values of a CT window given as level and width."""
    return level - width / 2.0, level + width / 2.0


def percentile_window(foreground: np.ndarray, percentiles: tuple[float, float]) -> Window:
    """``(low, high)`` percentiles of the foreground voxel values."""
    low, high = np.percentile(foreground, percentiles)
    return float(low), float(high)


def to_unit(values: np.ndarray, window: Window) -> np.ndarray:
    """Map ``window`` linearly to ``[0, 1]``, clipping outside (float32)."""
    low, high = window
    scale = 1.0 / (high - low) if high > low else 0.0
    return np.clip((np.asarray(values, dtype=np.float32) - low) * scale, 0.0, 1.0).astype(np.float32)


__all__ = ["Window", "check_percentiles", "check_window", "ct_window", "percentile_window", "to_unit"]
