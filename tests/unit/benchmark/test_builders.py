"""The benchmark's in-process studies leave the caller's logging and warning state as they found it."""

from __future__ import annotations

import logging
import warnings

import pytest

from anomalib_ea2d.benchmark.builders import quiet_lightning


def testquiet_lightning_restores_logger_levels_and_warning_filters(caplog: pytest.LogCaptureFixture) -> None:
    package_logger = logging.getLogger("anomalib_ea2d")
    before_level = package_logger.level
    before_filters = list(warnings.filters)
    with quiet_lightning():
        assert package_logger.level == logging.ERROR
        assert warnings.filters[0][0] == "ignore"
    assert package_logger.level == before_level
    assert warnings.filters == before_filters
    with caplog.at_level(logging.WARNING):
        logging.getLogger("anomalib_ea2d.components.fusion").warning("visible again")
    assert "visible again" in caplog.text


def testquiet_lightning_restores_state_when_the_study_fails() -> None:
    package_logger = logging.getLogger("anomalib_ea2d")
    before_level = package_logger.level

    @quiet_lightning()
    def failing_study() -> None:
        msg = "study failed"
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="study failed"):
        failing_study()
    assert package_logger.level == before_level
