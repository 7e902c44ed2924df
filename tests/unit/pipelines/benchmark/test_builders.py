"""The benchmark's builders: quiet studies that restore logging and warnings; comparators built from random weights."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
import torchvision

from anomalib_ea2d.pipelines.benchmark.builders import build_model, quiet_lightning, random_torchvision_weights


def test_quiet_lightning_restores_logger_levels_and_warning_filters(caplog: pytest.LogCaptureFixture) -> None:
    package_logger = logging.getLogger("anomalib_ea2d")
    before_level = package_logger.level
    before_filters = list(warnings.filters)
    with quiet_lightning():
        assert package_logger.level == logging.ERROR
        assert warnings.filters[0][0] == "ignore"
    assert package_logger.level == before_level
    assert warnings.filters == before_filters
    with caplog.at_level(logging.WARNING):
        logging.getLogger("anomalib_ea2d.models.components.fusion").warning("visible again")
    assert "visible again" in caplog.text


def test_quiet_lightning_restores_state_when_the_study_fails() -> None:
    package_logger = logging.getLogger("anomalib_ea2d")
    before_level = package_logger.level

    @quiet_lightning()
    def failing_study() -> None:
        msg = "study failed"
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="study failed"):
        failing_study()
    assert package_logger.level == before_level


def test_random_torchvision_weights_builds_uninet_without_any_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        msg = "a download was attempted"
        raise AssertionError(msg)

    # The name torchvision's weight enums call to download.
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_download)
    original = torchvision.models.get_model_weights
    torch.manual_seed(0)
    model = build_model("uninet", "resnet50", 64, max_steps=2)
    assert torchvision.models.get_model_weights is original  # restored after the build
    with random_torchvision_weights():
        assert torchvision.models.get_model_weights("resnet50").DEFAULT is None
    # Two differently seeded builds differ: the teachers are randomly initialised, not loaded.
    torch.manual_seed(1)
    other = build_model("uninet", "resnet50", 64, max_steps=2)
    first = next(model.model.teachers.source_teacher.parameters())
    second = next(other.model.teachers.source_teacher.parameters())
    assert not torch.equal(first, second)


def test_random_torchvision_weights_restores_torchvision_after_an_error() -> None:
    original = torchvision.models.get_model_weights

    def fail_inside() -> None:
        with random_torchvision_weights():
            msg = "boom"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    assert torchvision.models.get_model_weights is original
