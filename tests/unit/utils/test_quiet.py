"""quiet (and quiet_export, it for the exporter): silences loggers, warnings (and stdout), restores them after."""

from __future__ import annotations

import logging
import sys
import warnings

import pytest

from anomalib_ea2d.utils.quiet import EXPORT_LOGGERS, quiet, quiet_export


def test_state_is_restored_after_the_block(capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("onnx_ir").setLevel(logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in EXPORT_LOGGERS}
    filters = list(warnings.filters)
    stdout = sys.stdout
    with quiet_export():
        assert logging.getLogger("onnx_ir.passes.common").getEffectiveLevel() == logging.ERROR
        logging.getLogger("onnxscript.version_converter").warning("hidden warning")
        warnings.warn("hidden", UserWarning, stacklevel=1)
        print("hidden print")
    assert {name: logging.getLogger(name).level for name in EXPORT_LOGGERS} == levels
    assert warnings.filters == filters
    assert sys.stdout is stdout
    captured = capsys.readouterr()
    assert "hidden" not in captured.out + captured.err
    with pytest.warns(UserWarning, match="visible"):
        warnings.warn("visible", UserWarning, stacklevel=1)


def _failing_export() -> None:
    with quiet_export():
        print("exporter progress")
        msg = "export broke"
        raise RuntimeError(msg)


def test_output_is_shown_and_state_restored_when_the_export_fails(capsys: pytest.CaptureFixture[str]) -> None:
    levels = {name: logging.getLogger(name).level for name in EXPORT_LOGGERS}
    with pytest.raises(RuntimeError, match="export broke"):
        _failing_export()
    assert {name: logging.getLogger(name).level for name in EXPORT_LOGGERS} == levels
    assert "exporter progress" in capsys.readouterr().err


def test_quiet_leaves_stdout_alone_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    with quiet(["tests.chatty"], level=logging.WARNING):
        assert logging.getLogger("tests.chatty").level == logging.WARNING
        print("shown")
    assert logging.getLogger("tests.chatty").level == logging.NOTSET
    assert "shown" in capsys.readouterr().out
