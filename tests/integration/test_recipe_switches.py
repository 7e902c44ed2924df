"""Every recipe switch of ``EA2D``, observed *during* a real fit by a callback, never by calling methods by hand.

Each test trains a few steps on a tiny generated Folder set through anomalib's ``Engine`` (or a
plain Lightning ``Trainer``, or resumed from a checkpoint) and reads what the switch must do off the
model while it trains: BatchNorm statistics, the momentum of their updates, the size of the first
AdamW update per parameter group, the gradient norm after clipping, and the number of steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import nn

from anomalib_ea2d import EA2D
from tests.helpers.engine import cpu_engine
from tests.helpers.map_statistics import map_mean_by_hand
from tests.helpers.recorder import TestRecorder
from tests.helpers.tiny_data import make_tiny_folder_dataset, tiny_folder

IMAGE_SIZE = 64


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_folder_dataset(tmp_path_factory.mktemp("tiny"))


def _model(**recipe: Any) -> EA2D:
    return EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE, **recipe)


def _encoder_statistics(module: LightningModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.model.encoder.state_dict().items() if "running" in k}


class StatisticsProbe(Callback):
    """Per training step: did the encoder's BatchNorm statistics move since training started?"""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.encoder_moved: list[bool] = []
        self.steps_after_validation = 0
        self._validated = False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer
        self.start = _encoder_statistics(pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module
        self._validated = True

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        del trainer, args
        now = _encoder_statistics(pl_module)
        self.encoder_moved.append(any(not torch.equal(now[k], self.start[k]) for k in now))
        self.steps_after_validation += self._validated


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_encoder_bn_holds_through_engine_fit_and_validation(
    dataset_root: Path, tmp_path: Path, freeze: bool
) -> None:
    seed_everything(0)
    probe = StatisticsProbe()
    engine = cpu_engine(tmp_path, callbacks=[probe], max_steps=4, val_check_interval=2)
    engine.fit(model=_model(freeze_encoder_bn=freeze), datamodule=tiny_folder(dataset_root))
    assert len(probe.encoder_moved) == 4
    assert probe.steps_after_validation >= 1, "the test must train after a validation run"
    assert probe.encoder_moved == [not freeze] * 4


def test_freeze_encoder_bn_holds_with_a_plain_lightning_trainer(dataset_root: Path, tmp_path: Path) -> None:
    seed_everything(0)
    probe = StatisticsProbe()
    trainer = Trainer(
        default_root_dir=tmp_path, max_steps=3, accelerator="cpu", devices=1, logger=False, callbacks=[probe]
    )
    trainer.fit(_model(freeze_encoder_bn=True), datamodule=tiny_folder(dataset_root))
    assert probe.encoder_moved == [False] * 3


def test_freeze_encoder_bn_holds_after_resuming_from_a_checkpoint(dataset_root: Path, tmp_path: Path) -> None:
    seed_everything(0)
    first = cpu_engine(tmp_path / "first", callbacks=[StatisticsProbe()], max_steps=2)
    model = _model(freeze_encoder_bn=True)
    first.fit(model=model, datamodule=tiny_folder(dataset_root))
    checkpoint = first.trainer.checkpoint_callback.best_model_path
    probe = StatisticsProbe()
    resumed = cpu_engine(tmp_path / "resumed", callbacks=[probe], max_steps=4)
    resumed.fit(model=_model(freeze_encoder_bn=True), datamodule=tiny_folder(dataset_root), ckpt_path=checkpoint)
    assert resumed.trainer.global_step == 4
    assert probe.encoder_moved == [False] * 2
    # the resumed model carries the statistics it started from, untouched by 4 steps of training
    assert all(torch.equal(v, _encoder_statistics(model)[k]) for k, v in probe.start.items())


class MomentumProbe(Callback):
    """Read the momentum of each decoder BatchNorm update off the update itself: (new - old) / (batch - old)."""

    def __init__(self) -> None:
        self.momenta: list[float] = []
        self._handles: list[Any] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer
        batchnorm = next(m for m in pl_module.model.branches.modules() if isinstance(m, nn.BatchNorm2d))
        before: dict[str, torch.Tensor] = {}

        def pre_hook(module: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...]) -> None:
            before["running"] = module.running_mean.detach().clone()
            before["batch"] = inputs[0].detach().mean(dim=(0, 2, 3))

        def hook(module: nn.BatchNorm2d, inputs: Any, output: Any) -> None:
            del inputs, output
            if module.training:
                step = module.running_mean - before["running"]
                self.momenta.append(float((step / (before["batch"] - before["running"])).median()))

        self._handles = [batchnorm.register_forward_pre_hook(pre_hook), batchnorm.register_forward_hook(hook)]

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer, pl_module
        for handle in self._handles:
            handle.remove()


@pytest.mark.parametrize("momentum", [None, 0.2])
def test_bn_momentum_is_the_momentum_of_the_updates(dataset_root: Path, tmp_path: Path, momentum: float | None) -> None:
    seed_everything(0)
    probe = MomentumProbe()
    recipe = {} if momentum is None else {"bn_momentum": momentum}
    model = _model(**recipe)
    expected = model.hparams.bn_momentum
    cpu_engine(tmp_path, callbacks=[probe], max_steps=2).fit(model=model, datamodule=tiny_folder(dataset_root))
    assert probe.momenta
    assert probe.momenta == pytest.approx([expected] * len(probe.momenta), rel=1e-3)


class OptimizerProbe(Callback):
    """The first AdamW update per parameter group, and the gradient norms before and after clipping."""

    def __init__(self) -> None:
        self.before: dict[str, torch.Tensor] = {}
        self.first_update: dict[str, torch.Tensor] = {}
        self.norm_before_clipping: list[float] = []
        self.norm_after_clipping: list[float] = []

    @staticmethod
    def _norm(module: LightningModule) -> float:
        return float(torch.nn.utils.get_total_norm([p.grad for p in module.parameters() if p.grad is not None]))

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        del args
        if trainer.global_step == 0:
            self.before = {k: p.detach().clone() for k, p in pl_module.model.named_parameters()}

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Any) -> None:
        del trainer, optimizer
        self.norm_before_clipping.append(self._norm(pl_module))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        del args  # after the optimizer step: gradients as the optimizer used them (clipped)
        self.norm_after_clipping.append(self._norm(pl_module))
        if trainer.global_step == 1:
            self.first_update = {k: (p.detach() - self.before[k]).abs() for k, p in pl_module.model.named_parameters()}


def _median_update(update: dict[str, torch.Tensor], encoder: bool) -> float:
    """Median size of the first update over the weights that had a gradient (timm zero-inits some branches)."""
    values = torch.cat([v.flatten() for k, v in update.items() if k.startswith("encoder.") is encoder])
    return float(values[values > 0].median())


def test_learning_rates_and_clipping_are_the_ones_training_uses(dataset_root: Path, tmp_path: Path) -> None:
    """AdamW's first step moves every weight by about its group's learning rate, whatever the gradient."""
    seed_everything(0)
    probe = OptimizerProbe()
    model = _model(lr=3e-4, encoder_lr=2e-5, gradient_clip_norm=0.05)
    cpu_engine(tmp_path, callbacks=[probe], max_steps=2).fit(model=model, datamodule=tiny_folder(dataset_root))
    assert _median_update(probe.first_update, encoder=True) == pytest.approx(2e-5, rel=0.05)
    assert _median_update(probe.first_update, encoder=False) == pytest.approx(3e-4, rel=0.05)
    assert min(probe.norm_before_clipping) > 0.05, "clipping must have had something to do"
    assert max(probe.norm_after_clipping) == pytest.approx(0.05, rel=1e-4)


def test_trainer_gradient_clip_val_wins_over_the_recipe(dataset_root: Path, tmp_path: Path) -> None:
    seed_everything(0)
    probe = OptimizerProbe()
    engine = cpu_engine(tmp_path, callbacks=[probe], max_steps=2, gradient_clip_val=0.02)
    engine.fit(model=_model(gradient_clip_norm=0.05), datamodule=tiny_folder(dataset_root))
    assert max(probe.norm_after_clipping) == pytest.approx(0.02, rel=1e-4)


class StepCounter(Callback):
    def __init__(self) -> None:
        self.steps = 0

    def on_train_batch_end(self, *args: Any) -> None:
        del args
        self.steps += 1


@pytest.mark.parametrize(("model_steps", "trainer_steps", "expected"), [(3, None, 3), (3, 2, 2)])
def test_max_steps_is_how_long_training_runs(
    dataset_root: Path, tmp_path: Path, model_steps: int, trainer_steps: int | None, expected: int
) -> None:
    """The recipe's max_steps (over several epochs: 2 batches an epoch here) unless the trainer sets its own."""
    seed_everything(0)
    counter = StepCounter()
    extra = {} if trainer_steps is None else {"max_steps": trainer_steps}
    engine = cpu_engine(tmp_path, callbacks=[counter], limit_val_batches=0, **extra)
    engine.fit(model=_model(max_steps=model_steps), datamodule=tiny_folder(dataset_root))
    assert counter.steps == expected
    assert engine.trainer.global_step == expected


class MapStatisticsProbe(Callback):
    """At each validation's first batch: the map statistics, and the same statistics recomputed by hand."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def on_validation_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        del batch, dataloader_idx
        if batch_idx:
            return
        standardizer = pl_module.model.map_standardizer
        by_hand = map_mean_by_hand(pl_module, trainer.datamodule.train_dataloader())
        self.seen.append((trainer.global_step, standardizer.mean.clone(), by_hand))


def test_standardize_maps_is_fitted_on_the_training_images_after_training(dataset_root: Path, tmp_path: Path) -> None:
    seed_everything(0)
    probe = MapStatisticsProbe()
    engine = cpu_engine(tmp_path, callbacks=[probe], max_steps=4, val_check_interval=2)
    model = _model(standardize_maps=True)
    datamodule = tiny_folder(dataset_root)
    engine.fit(model=model, datamodule=datamodule)
    assert [step for step, _, _ in probe.seen] == [2, 4]
    for _, fitted, by_hand in probe.seen:
        # The statistics describe the weights of that moment, from the normal training images.
        torch.testing.assert_close(fitted, by_hand.to(fitted.dtype), rtol=1e-4, atol=1e-5)
    assert not torch.equal(probe.seen[0][1], probe.seen[1][1])  # refitted after more training
    # The checkpoint carries them: a fresh model loaded from it tests without refitting.
    checkpoint = next(Path(tmp_path).rglob("*.ckpt"))
    loaded = EA2D.load_from_checkpoint(checkpoint, weights_only=False)
    torch.testing.assert_close(loaded.model.map_standardizer.mean, model.model.map_standardizer.mean)
    recorder = TestRecorder()
    results = cpu_engine(tmp_path / "test", callbacks=[recorder]).test(
        model=loaded, datamodule=datamodule, verbose=False
    )
    assert results[0]["image_AUROC"] == pytest.approx(recorder.image_auroc(), abs=1e-6)
    # the loaded model scores the test images as the trained one does (statistics and weights restored)
    model.eval()
    with torch.no_grad():
        again = torch.cat([model.model(b.image).pred_score.reshape(-1) for b in recorder.batches])
    torch.testing.assert_close(again, torch.cat(recorder.raw_scores), rtol=1e-5, atol=1e-6)
