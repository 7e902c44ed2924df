"""Quiet export: silence the ONNX exporter's chatter in this project's entry points, and only there.

Every ONNX/OpenVINO export through anomalib prints ~150 INFO lines from the ONNX optimiser
(``onnx_ir``, ``onnxscript``) when the root logger is at INFO, the exporter's progress lines, and a
*traceback* logged as a warning when onnxscript's version converter cannot take the graph down to
the requested opset (the model is then kept at the exporter's opset, which OpenVINO reads: nothing
failed). :func:`quiet_export` hides these while the block runs and restores the loggers' levels,
the warning filters and ``stdout`` afterwards; if the export raises, the captured output is written
to ``stderr`` before the error propagates, so nothing is lost when something did fail.

Example:
    >>> import logging
    >>> before = logging.getLogger("onnxscript").level
    >>> with quiet_export():
    ...     print("hidden")
    >>> logging.getLogger("onnxscript").level == before
    True
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator

EXPORT_LOGGERS: tuple[str, ...] = (
    "onnxscript",
    "onnx_ir",
    "torch.onnx",
    "torch.export",
    "torch._export",
    "torch.fx",
    "nncf",
    "lightning.fabric",
    "lightning_fabric",
    "lightning.pytorch",
)
"""Loggers set to ERROR during an export."""


@contextlib.contextmanager
def quiet_export(level: int = logging.ERROR) -> Iterator[None]:
    """Silence export loggers (to ``level``), warnings and ``stdout`` inside the block; restore them after."""
    loggers = [logging.getLogger(name) for name in EXPORT_LOGGERS]
    levels = [item.level for item in loggers]
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured):
            warnings.simplefilter("ignore")
            for item in loggers:
                item.setLevel(level)
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        for item, saved in zip(loggers, levels, strict=True):
            item.setLevel(saved)


__all__ = ["EXPORT_LOGGERS", "quiet_export"]
