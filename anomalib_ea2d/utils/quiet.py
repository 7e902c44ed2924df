"""Quiet blocks: chatty loggers, warnings (and ``stdout``) silenced while a block runs, restored after.

:func:`quiet` is the one context manager; :func:`quiet_export` is it for the ONNX exporter, and the
benchmark's ``quiet_lightning`` for training chatter.

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
from collections.abc import Iterable, Iterator

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
def quiet(loggers: Iterable[str], level: int = logging.ERROR, *, capture_stdout: bool = False) -> Iterator[None]:
    """Silence ``loggers`` (to ``level``) and warnings inside the block, and ``stdout`` too with ``capture_stdout``.

    The loggers' levels and the warning filters are restored afterwards. If the block raises, the
    captured ``stdout`` is written to ``stderr`` before the error propagates.

    Example:
        >>> with quiet(["chatty"]):
        ...     logging.getLogger("chatty").level == logging.ERROR
        True
        >>> logging.getLogger("chatty").level
        0
    """
    handles = [logging.getLogger(name) for name in loggers]
    levels = [handle.level for handle in handles]
    captured = io.StringIO()
    redirect = contextlib.redirect_stdout(captured) if capture_stdout else contextlib.nullcontext()
    try:
        with warnings.catch_warnings(), redirect:
            warnings.simplefilter("ignore")
            for handle in handles:
                handle.setLevel(level)
            yield
    except BaseException:
        sys.stderr.write(captured.getvalue())
        raise
    finally:
        for handle, saved in zip(handles, levels, strict=True):
            handle.setLevel(saved)


def quiet_export(level: int = logging.ERROR) -> contextlib.AbstractContextManager[None]:
    """:func:`quiet` for an export: the :data:`EXPORT_LOGGERS`, warnings and ``stdout``."""
    return quiet(EXPORT_LOGGERS, level, capture_stdout=True)


__all__ = ["EXPORT_LOGGERS", "quiet", "quiet_export"]
