"""Errors of building EA2D that the command line reports as their message alone (the rest keep their type)."""

from __future__ import annotations

import pytest

from anomalib_ea2d import EA2D
from anomalib_ea2d.cli_errors import PlainExit, build_reporting_plainly
from anomalib_ea2d.models.components.backbone import OfflineWeightsError


def _offline() -> None:
    msg = "ImageNet weights 'resnet18.tv_in1k' cannot be reached; pass backbone_weights=/path/to/resnet.pth."
    raise OfflineWeightsError(msg)


def test_offline_weights_become_a_plain_exit_with_the_message() -> None:
    with pytest.raises(PlainExit) as caught:
        build_reporting_plainly(_offline)
    assert caught.value.code == (
        "error: ImageNet weights 'resnet18.tv_in1k' cannot be reached; pass backbone_weights=/path/to/resnet.pth."
    )
    assert isinstance(caught.value.__cause__, OfflineWeightsError)
    assert not isinstance(caught.value, Exception)  # so jsonargparse's `except Exception` lets it through


def test_other_errors_pass_unchanged() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        build_reporting_plainly(int, "x")
    assert build_reporting_plainly(int, "7") == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 72}, "EA2D image_size must be positive multiples of 32, got 72; e.g. 128 or 256."),
        ({"lr": -1.0}, "EA2D lr must be > 0, got -1.0; fix it in the model's init args."),
    ],
)
def test_the_packages_own_init_arg_checks_become_a_plain_exit(kwargs: dict, message: str) -> None:
    with pytest.raises(PlainExit) as caught:
        build_reporting_plainly(EA2D, backbone="resnet18", pre_trained=False, **kwargs)
    assert caught.value.code == f"error: {message}"
    assert isinstance(caught.value.__cause__, ValueError)
