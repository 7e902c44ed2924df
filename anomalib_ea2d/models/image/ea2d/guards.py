"""The guards EA2D attaches to every trainer it runs in: the generic safety guards and its checkpoint guards.

:meth:`EA2D.configure_callbacks <anomalib_ea2d.EA2D.configure_callbacks>` returns :func:`ea2d_guards`:
:class:`InputGuard` and :class:`CheckpointGuard` (defined here: they check EA2D checkpoints, see
:mod:`anomalib_ea2d.models.image.ea2d.checkpoint`) and the safety guards any anomalib model can use
(:mod:`anomalib_ea2d.callbacks.guards`: :class:`NumericsGuard`, :class:`ValidateAfterTraining`,
:class:`CalibrationGuard`), which are re-exported here with the other names of the old module
``anomalib_ea2d.guards``.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from anomalib_ea2d.callbacks.guards import (
    DIVERGENCE_ADVICE,
    CalibrationGuard,
    NumericsGuard,
    UncalibratedModelError,
    ValidateAfterTraining,
    WarnUncalibratedExport,
    uncalibrated,
    warn_if_uncalibrated,
)
from anomalib_ea2d.models.image.ea2d.checkpoint import CheckpointFormatError, guard_trainer_checkpoints


class InputGuard(Callback):
    """Check the checkpoints a trainer loads: clear errors for a ``--ckpt_path`` that is no EA2D checkpoint.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        >>> InputGuard().setup(trainer, None, "test")
        >>> type(trainer.strategy.checkpoint_io).__name__
        'GuardedCheckpointIO'
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule | None, stage: str) -> None:
        """Install the checked checkpoint IO (before Lightning restores ``--ckpt_path``)."""
        del pl_module, stage
        guard_trainer_checkpoints(trainer)


def _unsaveable(name: str, tensor: torch.Tensor) -> bool:
    """Whether a checkpoint entry is broken: NaN/Inf, except the NaN of not yet calibrated post-processing."""
    if name.startswith("post_processor."):
        return bool(torch.isinf(tensor).any())
    return not bool(torch.isfinite(tensor).all())


class CheckpointGuard(Callback):
    """Never write a checkpoint with NaN/Inf weights or post-processing statistics.

    Example:
        >>> CheckpointGuard().on_save_checkpoint(None, None, {"state_dict": {"w": torch.ones(2)}})
    """

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint whose weights hold NaN/Inf or whose post-processing statistics hold Inf.

        Post-processing statistics are NaN until a validation has calibrated them; that stays allowed.
        """
        del pl_module
        step = trainer.global_step if trainer is not None else "?"
        bad = [
            name
            for name, tensor in checkpoint.get("state_dict", {}).items()
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and _unsaveable(name, tensor)
        ]
        if bad:
            shown = ", ".join(bad[:5]) + (f" ... ({len(bad)} in all)" if len(bad) > 5 else "")
            msg = (
                f"EA2D refused to write a checkpoint at step {step}: {shown} hold NaN/Inf, so the "
                f"model has diverged. {DIVERGENCE_ADVICE}"
            )
            raise CheckpointFormatError(msg)


def ea2d_guards() -> list[Callback]:
    """One of each guard, in the order EA2D attaches them.

    Example:
        >>> [type(guard).__name__ for guard in ea2d_guards()]
        ['InputGuard', 'NumericsGuard', 'CheckpointGuard', 'ValidateAfterTraining', 'CalibrationGuard']
    """
    return [InputGuard(), NumericsGuard(), CheckpointGuard(), ValidateAfterTraining(), CalibrationGuard()]


__all__ = [
    "CalibrationGuard",
    "CheckpointGuard",
    "InputGuard",
    "NumericsGuard",
    "UncalibratedModelError",
    "ValidateAfterTraining",
    "WarnUncalibratedExport",
    "ea2d_guards",
    "uncalibrated",
    "warn_if_uncalibrated",
]
