"""A pretraining phase that learns a model's encoder from the training set's normal images before fitting.

Where no ImageNet weights can be had (an air-gapped hospital machine, a build machine), a model's
encoder starts from random weights. :class:`EncoderPretraining` runs first in ``Engine.fit`` /
``anomalib fit|train``: for ``steps`` steps it trains the encoder on the datamodule's own training
images with a self-supervised pretext task (``objective``: synthetic-anomaly segmentation,
:class:`~anomalib_ea2d.models.components.pretext.SyntheticAnomalySegmentation`, or the contrastive
:class:`~anomalib_ea2d.models.components.contrastive.SimSiam`), then hands the encoder to the
model's own training. Optionally it saves the learned weights in the format that
``backbone_weights`` options read (``--model.backbone_weights``), so later runs start from them, and
keeps the learned encoder fixed through the model's training (``freeze_encoder``).

The encoder is found through :class:`PretrainableEncoder` (a model says which module is its
encoder and whether it starts from random weights; EA2D does) or, for anomalib's models, as the
timm model inside their first :class:`~anomalib.models.components.TimmFeatureExtractor`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch
from anomalib.models.components import TimmFeatureExtractor
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from anomalib_ea2d.models.components.contrastive import SimSiam
from anomalib_ea2d.models.components.pretext import TEXTURES, SyntheticAnomalySegmentation

logger = logging.getLogger(__name__)

When = Literal["random_encoder", "always"]
Objective = Literal["segmentation", "simsiam"]
Schedule = Literal["constant", "cosine"]
SCHEDULES: tuple[str, ...] = ("constant", "cosine")
"""Learning-rate schedules of the pretraining phase: constant, or cosine decay to zero over its steps."""
OBJECTIVES: tuple[str, ...] = ("segmentation", "simsiam")
"""Pretext tasks of the pretraining phase: synthetic-anomaly segmentation, or contrastive SimSiam."""


@runtime_checkable
class PretrainableEncoder(Protocol):
    """A module that names its feature encoder and says whether that encoder starts from random weights."""

    def pretrainable_encoder(self) -> nn.Module:
        """The encoder: a module mapping normalised images to a list of feature maps."""
        ...

    @property
    def encoder_starts_random(self) -> bool:
        """Whether the encoder was built without pretrained weights (no ImageNet, no weights file)."""
        ...


def find_encoder(pl_module: nn.Module) -> tuple[nn.Module, bool | None]:
    """The module's encoder and whether it starts random (``None``: the module does not say).

    Raises:
        TypeError: If the module has no encoder this callback can find.
    """
    if isinstance(pl_module, PretrainableEncoder):
        return pl_module.pretrainable_encoder(), pl_module.encoder_starts_random
    for module in pl_module.modules():
        if isinstance(module, TimmFeatureExtractor) and isinstance(module.feature_extractor, nn.Module):
            return module.feature_extractor, None
    msg = (
        f"EncoderPretraining found no encoder in {type(pl_module).__name__}; use it with a model that implements "
        "PretrainableEncoder (EA2D) or holds a TimmFeatureExtractor (Reverse Distillation, PatchCore, ...)."
    )
    raise TypeError(msg)


def _images(trainer: Trainer) -> Iterator[torch.Tensor]:
    """Training images, batch after batch, cycling through the training loader as often as needed."""
    datamodule = trainer.datamodule
    if datamodule is None:
        msg = "EncoderPretraining needs a datamodule (Engine.fit(datamodule=...) or --data); none was given."
        raise ValueError(msg)
    while True:
        empty = True
        for batch in datamodule.train_dataloader():
            empty = False
            yield batch.image if hasattr(batch, "image") else batch["image"]
        if empty:
            msg = "EncoderPretraining found no training images in the datamodule; check its training split."
            raise ValueError(msg)


class EncoderPretraining(Callback):
    """Learn the model's encoder from its own normal training images before the model's training.

    Args:
        steps: Pretraining steps (one training batch each). ``0`` turns the phase off.
        learning_rate: AdamW learning rate of the encoder and the pretext head.
        weight_decay: AdamW weight decay.
        schedule: ``"constant"`` (default) keeps ``learning_rate`` for every step; ``"cosine"``
            decays it to zero over the ``steps`` (cosine annealing).
        when: ``"random_encoder"`` (default) pretrains only an encoder that starts from random weights
            (no ImageNet weights, no weights file); ``"always"`` pretrains any encoder.
        objective: The pretext task: ``"segmentation"`` (default; find synthetic anomalies pasted into
            the normal images) or ``"simsiam"`` (two augmented views of each image predict each
            other; no anomalies). See docs/benchmarks.md for what each buys.
        textures: What fills the synthetic anomalies (see
            :class:`~anomalib_ea2d.models.components.pretext.SyntheticAnomalySegmentation`);
            ``"segmentation"`` only.
        foreground_threshold: Anomalies are pasted only where the raw image is brighter than this
            (``None``: anywhere); ``"segmentation"`` only.
        save_path: Where to save the learned encoder (a state dict that ``backbone_weights`` reads);
            ``None`` saves nothing.
        freeze_encoder: After the phase, keep the learned encoder fixed through the model's own
            training: its parameters take no gradients (no backward pass through the encoder, so
            each step is cheaper; its BatchNorm statistics still follow the model's train/eval mode)
            and are trainable again when fitting ends. Only when the phase ran: an ImageNet encoder
            trains as its model's recipe says.

    Example:
        >>> from anomalib.engine import Engine
        >>> from anomalib_ea2d import EA2D
        >>> callback = EncoderPretraining(steps=300, save_path="results/encoder.pth")
        >>> engine = Engine(callbacks=[callback])  # doctest: +SKIP
        >>> engine.fit(EA2D(pre_trained=False), datamodule=datamodule)  # doctest: +SKIP

        From the command line: ``anomalib train --model EA2D --model.pre_trained false
        --trainer.callbacks+=anomalib_ea2d.callbacks.EncoderPretraining --data ...``.
    """

    def __init__(
        self,
        steps: int = 300,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        schedule: Schedule = "constant",
        when: When = "random_encoder",
        objective: Objective = "segmentation",
        textures: Sequence[str] = TEXTURES,
        foreground_threshold: float | None = 0.05,
        save_path: str | Path | None = None,
        freeze_encoder: bool = False,
    ) -> None:
        if steps < 0:
            msg = f"EncoderPretraining steps={steps} is not valid; pass 0 (off) or a positive number of steps."
            raise ValueError(msg)
        if when not in ("random_encoder", "always"):
            msg = f"EncoderPretraining when={when!r} is not valid; choose 'random_encoder' or 'always'."
            raise ValueError(msg)
        if objective not in OBJECTIVES:
            msg = f"EncoderPretraining objective={objective!r} is not valid; choose one of {list(OBJECTIVES)}."
            raise ValueError(msg)
        if schedule not in SCHEDULES:
            msg = f"EncoderPretraining schedule={schedule!r} is not valid; choose one of {list(SCHEDULES)}."
            raise ValueError(msg)
        self.steps = steps
        self.schedule = schedule
        self.objective = objective
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.when = when
        self.textures = tuple(textures)
        self.foreground_threshold = foreground_threshold
        self.save_path = None if save_path is None else Path(save_path)
        self.freeze_encoder = freeze_encoder
        self._frozen: list[tuple[nn.Parameter, bool]] = []
        SyntheticAnomalySegmentation([1, 1, 1], textures=self.textures)  # checks the texture names now
        self.losses: list[float] = []
        """The pretext loss of every step of the last pretraining phase."""
        self.learning_rates: list[float] = []
        """The learning rate of every step of the last pretraining phase."""
        self.seconds: float = 0.0
        """Wall time of the last pretraining phase."""

    def _phase_encoder(self, pl_module: LightningModule) -> nn.Module | None:
        """The encoder the phase trains, or ``None`` when the phase is off or the encoder is pretrained."""
        if self.steps == 0:
            return None
        encoder, starts_random = find_encoder(pl_module)
        return None if self.when == "random_encoder" and starts_random is False else encoder

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """With ``freeze_encoder``, take the encoder's parameters out of training before fitting starts.

        Done here, before the strategy wraps the model: DDP registers only the parameters that
        require gradients then. The pretraining phase trains the encoder all the same (it turns its
        gradients on for the phase, then back off).
        """
        del trainer
        encoder = self._phase_encoder(pl_module) if stage == "fit" and self.freeze_encoder else None
        if encoder is not None:
            self._frozen = [(p, p.requires_grad) for p in encoder.parameters()]
            encoder.requires_grad_(False)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Run the pretraining phase (unless the encoder is pretrained, or the fit resumes from a checkpoint).

        Resuming from a checkpoint (``ckpt_path``) skips the phase, whose encoder the checkpoint
        holds; with ``freeze_encoder`` that encoder stays fixed, as in the first fit.
        """
        encoder = self._phase_encoder(pl_module)
        if encoder is None:
            if self.steps:
                logger.info(
                    "EncoderPretraining skipped: the encoder starts from pretrained weights (when='always' runs it)."
                )
            return
        if trainer.ckpt_path is None:
            self._run_phase(trainer, pl_module, encoder)
        if self._frozen:
            logger.info("EncoderPretraining: the learned encoder stays fixed in the model's training (freeze_encoder).")

    def _run_phase(self, trainer: Trainer, pl_module: LightningModule, encoder: nn.Module) -> None:
        """Pretrain ``encoder``, share rank 0's result across processes and save it if asked."""
        self.pretrain(encoder, _images(trainer), getattr(pl_module, "pre_processor", None), pl_module.device)
        if trainer.world_size > 1:  # every process pretrained on its own; all continue from rank 0's encoder
            encoder.load_state_dict(trainer.strategy.broadcast(encoder.state_dict(), src=0))
        if self.save_path is not None and trainer.is_global_zero:
            self.save_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(encoder.state_dict(), self.save_path)
            logger.info(
                "EncoderPretraining saved the encoder to %s (--model.backbone_weights reads it).", self.save_path
            )

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Make a frozen encoder trainable again, as it was before fitting."""
        self._unfreeze()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Make a frozen encoder trainable again when fitting stops on an error."""
        self._unfreeze()

    def _unfreeze(self) -> None:
        for parameter, flag in self._frozen:
            parameter.requires_grad_(flag)
        self._frozen = []

    def pretrain(
        self,
        encoder: nn.Module,
        images: Iterator[torch.Tensor],
        transform: nn.Module | None,
        device: torch.device,
    ) -> None:
        """Train ``encoder`` in place for ``steps`` batches of ``images`` (raw, in [0, 1])."""
        channels = encoder.feature_info.channels() if hasattr(encoder, "feature_info") else None
        if channels is None:
            msg = "EncoderPretraining needs a timm features_only encoder (one with feature_info); this one has none."
            raise TypeError(msg)
        pretext: nn.Module
        if self.objective == "simsiam":
            pretext = SimSiam(channels).to(device)
            task = "contrastive SimSiam on two augmented views of each image"
        else:
            pretext = SyntheticAnomalySegmentation(
                channels, textures=self.textures, foreground_threshold=self.foreground_threshold
            ).to(device)
            task = f"synthetic-anomaly segmentation, {'/'.join(self.textures)} textures"
        trainable = [p for p in encoder.parameters()]
        flags = [p.requires_grad for p in trainable]
        was_training = encoder.training
        logger.info(
            "EncoderPretraining: learning the encoder from the training images (%d steps of %s, %s learning "
            "rate) before the model's own training.",
            self.steps,
            task,
            self.schedule,
        )
        start = time.perf_counter()
        self.losses, self.learning_rates = [], []
        try:
            for p in trainable:
                p.requires_grad_(True)
            encoder.train()
            pretext.train()
            optimizer = torch.optim.AdamW(
                [*trainable, *pretext.parameters()], lr=self.learning_rate, weight_decay=self.weight_decay
            )
            scheduler = (
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.steps)
                if self.schedule == "cosine"
                else None
            )
            lone = 0
            while len(self.losses) < self.steps:
                batch = next(images).to(device)
                if batch.shape[0] < 2 and self.objective == "simsiam":
                    lone += 1  # a lone last image of an epoch has no batch statistics for SimSiam's heads
                    if lone > 1:
                        msg = (
                            "EncoderPretraining objective='simsiam' needs training batches of at least 2 images; "
                            "raise the datamodule's train_batch_size."
                        )
                        raise ValueError(msg)
                    continue
                lone = 0
                with torch.enable_grad():
                    loss = pretext(encoder, batch, transform)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.learning_rates.append(float(optimizer.param_groups[0]["lr"]))
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                self.losses.append(float(loss.detach()))
        finally:
            for p, flag in zip(trainable, flags, strict=True):
                p.requires_grad_(flag)
                p.grad = None
            encoder.train(was_training)
        self.seconds = time.perf_counter() - start
        logger.info(
            "EncoderPretraining done in %.0f s: pretext loss %.3f -> %.3f.",
            self.seconds,
            self.losses[0],
            self.losses[-1],
        )
