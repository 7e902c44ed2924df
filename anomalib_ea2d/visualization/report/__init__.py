"""The run report: one self-contained HTML page per test run (curves, histograms, errors, volumes).

Modules: :mod:`.callback` (:class:`RunReport`, the Lightning callback for any anomalib model),
:mod:`.curves` (ROC/PR curves and areas, the bounded pixel sample), :mod:`.plots` (figures and
thumbnails), :mod:`.volumes` (the per-volume table), :mod:`.page` (the HTML).
"""

from anomalib_ea2d.visualization.report.callback import REPORT_FILE, RunReport

__all__ = ["REPORT_FILE", "RunReport"]
