"""Safety guards: Lightning callbacks that stop a run before NaN/Inf or uncalibrated thresholds do damage.

EA2D attaches them to every trainer it runs in (``EA2D.configure_callbacks()``, the way anomalib
attaches its pre- and post-processor, together with its checkpoint guards in
:mod:`anomalib_ea2d.models.image.ea2d.guards`); they work with any anomalib model as callbacks:

* :class:`NumericsGuard` stops training with the step number as soon as the input batch, the loss,
  a BatchNorm statistic, a gradient or a validation/test output is NaN/Inf, before the weights are
  damaged, and leaves no NaN/Inf statistic in the model.
* :class:`ValidateAfterTraining` makes the trainer validate after the last training step, also when
  training stops inside an epoch (``max_steps``), so the post-processor's thresholds and
  normalisation are always fitted to the final weights.
* :class:`CalibrationGuard` stops ``test``/``predict`` of a model whose post-processor was never
  calibrated (NaN thresholds) with one message saying what to do, instead of printing metrics of
  NaN thresholds; :func:`warn_if_uncalibrated` says so when such a model is exported.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from anomalib.post_processing import PostProcessor
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

logger = logging.getLogger(__name__)

DIVERGENCE_ADVICE = "Lower lr/encoder_lr, check the input images for NaN/Inf, or keep gradient clipping on."
"""What the messages of a diverged run advise."""
_STOPPED = "training stopped before the weights turn into NaN"


def _statistics(module: nn.Module) -> list[torch.Tensor]:
    """The running statistics of every BatchNorm in ``module`` that updates them."""
    return [
        statistic
        for child in module.modules()
        if isinstance(child, nn.modules.batchnorm._BatchNorm)  # noqa: SLF001
        for statistic in (child.running_mean, child.running_var)
        if statistic is not None
    ]


def _all_finite(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One boolean tensor (no device sync): whether every tensor is free of NaN/Inf."""
    if not tensors:
        return torch.tensor(True)
    return torch.stack([torch.isfinite(tensor).all() for tensor in tensors]).all()


class NumericsGuard(Callback):
    """Stop training at the first NaN/Inf, before it reaches the weights or a checkpoint.

    The BatchNorm statistics are updated by the forward pass itself, before the loss can be looked
    at. Instead of copying them before every step, the guard keeps a snapshot refreshed every
    ``snapshot_every_n_steps`` steps (and at the start of training and after each validation) and
    puts it back if a step leaves NaN/Inf statistics. Input, loss and statistics are checked together
    in one device sync per step, and the message says whether the input batch held NaN/Inf pixels.

    Args:
        snapshot_every_n_steps: How often the BatchNorm statistics are copied while all is well.

    Example:
        >>> guard = NumericsGuard(snapshot_every_n_steps=100)
        >>> guard.snapshot_every_n_steps
        100
    """

    def __init__(self, snapshot_every_n_steps: int = 100) -> None:
        self.snapshot_every_n_steps = snapshot_every_n_steps
        self._snapshot: list[torch.Tensor] = []
        self._input_finite: torch.Tensor | None = None

    def _take_snapshot(self, pl_module: LightningModule) -> None:
        self._snapshot = [buffer.detach().clone() for buffer in _statistics(pl_module)]

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Snapshot the statistics the run starts from."""
        del trainer
        self._take_snapshot(pl_module)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:  # noqa: ANN401
        """Refresh the snapshot when due and note (without a device sync) whether the input is finite."""
        del batch_idx
        if trainer.global_step and trainer.global_step % self.snapshot_every_n_steps == 0:
            self._take_snapshot(pl_module)
        image = getattr(batch, "image", None)
        self._input_finite = torch.isfinite(image).all() if isinstance(image, torch.Tensor) else None

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: torch.Tensor) -> None:
        """Check input, loss and BatchNorm statistics in one device sync; stop and repair if one is NaN/Inf."""
        statistics = _statistics(pl_module)
        flags = [
            self._input_finite if self._input_finite is not None else torch.tensor(True),
            torch.isfinite(loss).all(),
            _all_finite(statistics),
        ]
        input_ok, loss_ok, statistics_ok = torch.stack([flag.to(loss.device) for flag in flags]).tolist()
        if input_ok and loss_ok and statistics_ok:
            return
        if not statistics_ok:
            self._restore(statistics)
        problem = "BatchNorm statistics became NaN/Inf" if loss_ok else f"loss became {loss.item()}"
        advice = (
            DIVERGENCE_ADVICE
            if input_ok
            else "The input batch holds NaN/Inf pixels: check the input images for NaN/Inf."
        )
        msg = f"EA2D {problem} at step {trainer.global_step}; {_STOPPED}. {advice}"
        raise FloatingPointError(msg)

    def _restore(self, statistics: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for buffer, saved in zip(statistics, self._snapshot, strict=True):
                buffer.copy_(saved)
        logger.info("EA2D BatchNorm statistics were reset to their last snapshot (they held NaN/Inf).")

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Any) -> None:  # noqa: ANN401
        """Stop before the optimizer step if a gradient is NaN/Inf (a finite loss can still have them)."""
        del optimizer
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
            msg = f"EA2D gradients became NaN/Inf at step {trainer.global_step}; {_STOPPED}. {DIVERGENCE_ADVICE}"
            raise FloatingPointError(msg)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A validated model's statistics are the next snapshot."""
        if trainer.state.fn == TrainerFn.FITTING:
            self._take_snapshot(pl_module)

    def _check_outputs(self, outputs: Any, trainer: Trainer) -> None:  # noqa: ANN401
        fields = [getattr(outputs, name, None) for name in ("pred_score", "anomaly_map")]
        tensors = [field for field in fields if isinstance(field, torch.Tensor)]
        if not tensors or bool(_all_finite(tensors)):
            return
        if trainer.state.fn == TrainerFn.FITTING:
            msg = (
                f"EA2D validation scores became NaN/Inf at step {trainer.global_step}; training stopped before "
                f"thresholds or a checkpoint are computed from them. {DIVERGENCE_ADVICE}"
            )
        else:
            msg = (
                "EA2D scores or anomaly maps are NaN/Inf, so no metric or threshold can be computed; the model's "
                "weights hold NaN/Inf (a diverged run): retrain it with a lower lr/encoder_lr."
            )
        raise FloatingPointError(msg)

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,  # noqa: ANN401
        batch: Any,  # noqa: ANN401
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Stop if validation or test scored NaN/Inf (no thresholds, metrics or checkpoint from them)."""
        del pl_module, batch, batch_idx, dataloader_idx
        self._check_outputs(outputs, trainer)

    on_test_batch_end = on_validation_batch_end


class UncalibratedModelError(RuntimeError):
    """A model's post-processor has NaN thresholds or normalisation statistics (no validation ran)."""


def uncalibrated(pl_module: nn.Module | None) -> bool:
    """Whether ``pl_module``'s post-processor thresholds or normalises with statistics it never computed.

    Example:
        >>> from anomalib.post_processing import PostProcessor
        >>> module = nn.Module()
        >>> module.post_processor = PostProcessor()
        >>> uncalibrated(module)
        True
        >>> module.post_processor = PostProcessor(enable_normalization=False, enable_thresholding=False)
        >>> uncalibrated(module)
        False
    """
    post = getattr(pl_module, "post_processor", None)
    if not isinstance(post, PostProcessor):
        return False
    missing_threshold = post.enable_thresholding and bool(torch.isnan(post.image_threshold).item())
    missing_range = post.enable_normalization and bool(torch.isnan(post.image_min).item())
    return missing_threshold or missing_range


def _uncalibrated_message(pl_module: nn.Module, action: str) -> str:
    name = type(pl_module).__name__
    return (
        f"{name} cannot {action}: its post-processor was never calibrated (no validation ran after training), so "
        "its thresholds and score normalisation are NaN; validate the model first (anomalib validate with the same "
        "--ckpt_path, or Engine.validate) on a datamodule with a validation set (e.g. --data.val_split_mode "
        "from_train), or train again with validation."
    )


def warn_if_uncalibrated(pl_module: nn.Module) -> None:
    """Log one line when ``pl_module`` is exported with an uncalibrated post-processor (raw scores, no labels)."""
    if uncalibrated(pl_module):
        message = _uncalibrated_message(pl_module, "export calibrated scores")
        logger.warning("%s The export outputs raw scores and no usable labels.", message)


class WarnUncalibratedExport:
    """Mixin for an anomalib model: :func:`warn_if_uncalibrated` before ``to_torch``/``to_onnx``/``to_openvino``."""

    def to_torch(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """Anomalib's export to a torch file, after the calibration check."""
        warn_if_uncalibrated(self)
        return super().to_torch(*args, **kwargs)  # type: ignore[misc]

    def to_onnx(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """Anomalib's export to ONNX, after the calibration check."""
        warn_if_uncalibrated(self)
        return super().to_onnx(*args, **kwargs)  # type: ignore[misc]


class ValidateAfterTraining(Callback):
    """Validate after the last training step, also when ``max_steps`` ends training inside an epoch.

    Lightning validates at the end of each epoch; a run shorter than an epoch would end with a
    post-processor that never saw a validation (NaN thresholds). Asking the trainer to stop at the
    last step makes Lightning run the validation it runs before any early stop.

    Example:
        >>> ValidateAfterTraining().on_train_batch_end(None, None, None, None, 0)  # no trainer: nothing to do
    """

    def on_train_batch_end(
        self,
        trainer: Trainer | None,
        pl_module: LightningModule | None,
        outputs: Any,  # noqa: ANN401
        batch: Any,  # noqa: ANN401
        batch_idx: int,
    ) -> None:
        """At the last step, ask the trainer to stop (which makes it validate first)."""
        del pl_module, outputs, batch, batch_idx
        if trainer is None or trainer.max_steps is None or trainer.max_steps < 0:
            return
        if trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


class CalibrationGuard(Callback):
    """Stop ``test``/``predict`` with one clear message when the post-processor was never calibrated.

    Example:
        >>> from anomalib.post_processing import PostProcessor
        >>> module = nn.Module()
        >>> module.post_processor = PostProcessor()
        >>> CalibrationGuard().on_test_start(None, module)
        Traceback (most recent call last):
        ...
        anomalib_ea2d.callbacks.guards.UncalibratedModelError: Module cannot test: its post-processor was never ...
    """

    def on_test_start(self, trainer: Trainer | None, pl_module: LightningModule) -> None:
        """Refuse to compute metrics with NaN thresholds."""
        del trainer
        if uncalibrated(pl_module):
            raise UncalibratedModelError(_uncalibrated_message(pl_module, "test"))

    def on_predict_start(self, trainer: Trainer | None, pl_module: LightningModule) -> None:
        """Refuse to predict labels with NaN thresholds."""
        del trainer
        if uncalibrated(pl_module):
            raise UncalibratedModelError(_uncalibrated_message(pl_module, "predict"))


__all__ = [
    "DIVERGENCE_ADVICE",
    "CalibrationGuard",
    "NumericsGuard",
    "UncalibratedModelError",
    "ValidateAfterTraining",
    "WarnUncalibratedExport",
    "uncalibrated",
    "warn_if_uncalibrated",
]
