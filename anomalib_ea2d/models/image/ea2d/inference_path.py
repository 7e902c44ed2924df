"""Which network EA2D's validation, test and predict steps run: a fused inference copy or the plain modules.

``EA2D(inference_path="fused")`` (the default, what ``anomalib test`` and ``anomalib predict`` get):
at the start of every validation, test and prediction run, the Lightning module makes an
inference copy of its network with :meth:`EA2DModel.fuse() <anomalib_ea2d.EA2DModel.fuse>`
(every BatchNorm folded into the convolution before it, channels-last weights) from the weights
it has at that moment; its steps run that copy, and the copy is dropped when the run ends.
``inference_path="plain"`` runs the steps on the plain modules instead. Both compute the same
scores and maps to float rounding (within 1e-5; ``tests/integration/test_inference_path.py``).

The trainable network, ``EA2D.model``, is never replaced. The copy is kept outside the module
tree, so training, the optimiser, ``state_dict`` and checkpoints, ``.to(device)`` and anomalib's
export (which runs ``EA2D.forward``, on the plain modules) never see it: checkpoints always hold
the trainable weights, and fitting again after a test trains the same model. Callbacks that
change the network before a run (map statistics, a region of interest) run first, so the copy
includes their changes.
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

from torch import nn

logger = logging.getLogger("anomalib_ea2d.lightning_model")

InferencePath = Literal["fused", "plain"]
"""``"fused"``: the steps run a :meth:`~anomalib_ea2d.EA2DModel.fuse` copy; ``"plain"``: the modules as trained."""

INFERENCE_PATHS: tuple[str, ...] = get_args(InferencePath)

_COPY = "_fused_inference_model"
"""Name of the fused copy in the module's ``__dict__`` (not registered as a submodule)."""


def check_inference_path(value: str) -> None:
    """Raise a one-sentence ``ValueError`` unless ``value`` is an :data:`InferencePath`.

    Example:
        >>> check_inference_path("fused")
        >>> check_inference_path("fast")
        Traceback (most recent call last):
        ...
        ValueError: EA2D inference_path must be 'fused' or 'plain', got 'fast'.
    """
    if value not in INFERENCE_PATHS:
        msg = f"EA2D inference_path must be 'fused' or 'plain', got {value!r}."
        raise ValueError(msg)


class FusedInferenceSteps:
    """Mixin for a Lightning module with a network ``model`` that has ``fuse()``: fused copy for eval runs.

    The module's ``inference_path`` hyper-parameter chooses (``"fused"`` when absent, e.g. in a
    checkpoint written before the option existed). Its steps call :attr:`inference_model`.

    Example:
        >>> from anomalib_ea2d import EA2D
        >>> module = EA2D(backbone="resnet18", pre_trained=False, visualizer=False)
        >>> module.on_test_start()
        >>> module.inference_model.is_fused, module.model.is_fused
        (True, False)
        >>> module.on_test_end()
        >>> module.inference_model is module.model
        True
    """

    model: nn.Module

    @property
    def inference_model(self) -> nn.Module:
        """The network the validation/test/predict steps run: the fused copy during such a run, else ``model``."""
        fused = self.__dict__.get(_COPY)
        return self.model if fused is None else fused

    def start_inference(self) -> None:
        """Make the fused copy from the current weights (``inference_path="fused"``); drop any older one."""
        self.end_inference()
        if self.hparams.get("inference_path", "fused") == "fused":  # type: ignore[attr-defined]
            # Kept in __dict__: assigning an nn.Module attribute would register it as a submodule.
            self.__dict__[_COPY] = self.model.fuse()
            logger.debug("%s runs on a fused inference copy (inference_path='fused').", type(self).__name__)

    def end_inference(self) -> None:
        """Drop the fused copy: the steps run ``model`` again."""
        self.__dict__.pop(_COPY, None)

    def on_validation_start(self) -> None:
        """Fuse for this validation run."""
        self.start_inference()

    def on_validation_end(self) -> None:
        """Drop the copy after validation."""
        self.end_inference()

    def on_test_start(self) -> None:
        """Fuse for this test run."""
        self.start_inference()

    def on_test_end(self) -> None:
        """Drop the copy after testing."""
        self.end_inference()

    def on_predict_start(self) -> None:
        """Fuse for this prediction run."""
        self.start_inference()

    def on_predict_end(self) -> None:
        """Drop the copy after predicting."""
        self.end_inference()

    def on_train_start(self) -> None:
        """Training never sees a copy (one left by a run that stopped with an error is dropped)."""
        self.end_inference()


__all__ = ["INFERENCE_PATHS", "FusedInferenceSteps", "InferencePath", "check_inference_path"]
