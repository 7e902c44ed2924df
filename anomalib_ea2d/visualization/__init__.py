"""What the project draws: the run report (``report/``, :class:`RunReport`) and volume overlays (``volume_overlay``).

Attributes are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalib_ea2d._lazy import lazy_exports

if TYPE_CHECKING:
    from anomalib_ea2d.visualization.report import RunReport
    from anomalib_ea2d.visualization.volume_overlay import save_overlay

_EXPORTS = {
    "RunReport": "anomalib_ea2d.visualization.report",
    "save_overlay": "anomalib_ea2d.visualization.volume_overlay",
}

__all__ = ["RunReport", "save_overlay"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
