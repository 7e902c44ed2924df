"""The in-domain encoder phase through anomalib's Engine and CLI: it changes the encoder, the model trains from it,
the saved weights reload, and the exported model keeps its form."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from anomalib.deploy import ExportType
from anomalib.models import Patchcore, ReverseDistillation
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything

from anomalib_ea2d import EA2D
from anomalib_ea2d.callbacks import EncoderPretraining
from anomalib_ea2d.callbacks.encoder_pretraining import find_encoder
from anomalib_ea2d.pipelines.benchmark.encoder import load_encoder_weights
from tests.helpers.cli import cli_env
from tests.helpers.engine import cpu_engine
from tests.helpers.tiny_data import tiny_synthetic_brain, tiny_synthetic_brain_cli

SIZE = 64
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("brain")
    tiny_synthetic_brain(root, SIZE).prepare_data()
    return root


def _encoder_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    encoder, _ = find_encoder(module)
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}


class EncoderProbe(Callback):
    """The encoder's weights when training starts and at the first training step (after the pretraining phase)."""

    def __init__(self) -> None:
        self.at_train_start: dict[str, torch.Tensor] = {}
        self.at_first_step: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer
        self.at_train_start = _encoder_state(pl_module)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        del args
        if trainer.global_step == 0:
            self.at_first_step = _encoder_state(pl_module)


def _changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def _fit(model: LightningModule, root: Path, tmp: Path, *callbacks: Callback, **engine: Any) -> Any:
    seed_everything(0)
    run = cpu_engine(tmp, max_steps=2, callbacks=list(callbacks), **engine)
    run.fit(model=model, datamodule=tiny_synthetic_brain(root, SIZE))
    return run


@pytest.mark.parametrize("objective", ["segmentation", "simsiam"])
def test_engine_fit_pretrains_a_random_encoder_then_trains_from_it_and_saves_it(
    objective: str, data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
    initial = _encoder_state(model)
    probe, saved = EncoderProbe(), tmp_path / "encoder.pth"
    pretraining = EncoderPretraining(steps=3, objective=objective, save_path=saved)  # type: ignore[arg-type]
    with caplog.at_level("INFO", logger="anomalib_ea2d"):
        _fit(model, data_root, tmp_path, pretraining, probe)
    task = "SimSiam" if objective == "simsiam" else "synthetic-anomaly segmentation"
    assert any(
        "EncoderPretraining: learning the encoder" in r.getMessage() and task in r.getMessage() for r in caplog.records
    )

    assert len(pretraining.losses) == 3
    assert pretraining.learning_rates == [pretraining.learning_rate] * 3  # the default schedule is constant
    assert torch.isfinite(torch.tensor(pretraining.losses)).all()
    assert _changed(initial, probe.at_train_start), "the pretraining phase left the encoder as it was"
    for key, value in probe.at_train_start.items():  # the model's own training starts from the learned encoder
        torch.testing.assert_close(probe.at_first_step[key], value)
    assert all(p.requires_grad for p in model.model.encoder.parameters())  # EA2D's recipe trains its encoder

    reloaded = EA2D(backbone="resnet18", pre_trained=False, backbone_weights=saved, image_size=SIZE)
    for key, value in probe.at_train_start.items():
        torch.testing.assert_close(reloaded.model.encoder.state_dict()[key], value)


class GradientProbe(Callback):
    """At every optimizer step of the model's own training: which encoder and decoder parameters hold gradients."""

    def __init__(self) -> None:
        self.encoder_grads: list[bool] = []
        self.decoder_grads: list[bool] = []
        self.encoder_at_train_start: dict[str, torch.Tensor] = {}

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        del trainer
        self.encoder_at_train_start = {k: p.detach().clone() for k, p in pl_module.model.encoder.named_parameters()}

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule, optimizer: Any) -> None:
        del trainer, optimizer
        self.encoder_grads.append(any(p.grad is not None for p in pl_module.model.encoder.parameters()))
        self.decoder_grads.append(any(p.grad is not None for p in pl_module.model.branches.parameters()))


class StopAtFirstStep(Callback):
    def on_train_batch_start(self, *args: Any) -> None:
        del args
        msg = "stopped by the test"
        raise RuntimeError(msg)


def test_freeze_encoder_keeps_the_learned_encoder_fixed_through_engine_fit(
    data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
    initial = _encoder_state(model)
    probe = GradientProbe()
    with caplog.at_level("INFO", logger="anomalib_ea2d"):
        _fit(model, data_root, tmp_path / "frozen", EncoderPretraining(steps=2, freeze_encoder=True), probe)
    assert any("stays fixed" in r.getMessage() for r in caplog.records)
    assert _changed(initial, probe.encoder_at_train_start), "the pretraining phase did not run"
    assert probe.encoder_grads == [False] * 2  # no backward through the encoder in either step
    assert probe.decoder_grads == [True] * 2  # while the decoders train
    for name, parameter in model.model.encoder.named_parameters():
        torch.testing.assert_close(parameter.detach(), probe.encoder_at_train_start[name])
    assert all(p.requires_grad for p in model.model.encoder.parameters())  # trainable again after fit

    unfrozen = GradientProbe()  # the default: EA2D's recipe goes on training the encoder
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
    _fit(model, data_root, tmp_path / "default", EncoderPretraining(steps=2), unfrozen)
    assert unfrozen.encoder_grads == [True] * 2


def test_freeze_encoder_is_undone_when_fit_fails_and_skipped_without_the_phase(data_root: Path, tmp_path: Path) -> None:
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
    with pytest.raises(RuntimeError, match="stopped by the test"):
        _fit(model, data_root, tmp_path / "fail", EncoderPretraining(steps=1, freeze_encoder=True), StopAtFirstStep())
    assert all(p.requires_grad for p in model.model.encoder.parameters())

    weights = tmp_path / "given.pth"  # a given encoder skips the phase, and freeze_encoder with it
    torch.save(EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE).model.encoder.state_dict(), weights)
    model = EA2D(backbone="resnet18", pre_trained=False, backbone_weights=weights, image_size=SIZE, max_steps=2)
    probe = GradientProbe()
    _fit(model, data_root, tmp_path / "given", EncoderPretraining(steps=2, freeze_encoder=True), probe)
    assert probe.encoder_grads == [True] * 2


def test_a_resumed_fit_skips_the_phase_and_keeps_the_encoder_fixed(data_root: Path, tmp_path: Path) -> None:
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
    _fit(model, data_root, tmp_path / "first", EncoderPretraining(steps=2, freeze_encoder=True))
    checkpoint = next((tmp_path / "first").rglob("*.ckpt"))

    resumed, probe = EncoderPretraining(steps=2, freeze_encoder=True), GradientProbe()
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
    seed_everything(0)
    run = cpu_engine(tmp_path / "resumed", max_steps=4, callbacks=[resumed, probe])
    run.fit(model=model, datamodule=tiny_synthetic_brain(data_root, SIZE), ckpt_path=checkpoint)
    assert resumed.losses == []  # the checkpoint holds the learned encoder: no second phase
    assert probe.encoder_grads == [False] * 2  # steps 3 and 4 keep it fixed, as the first fit did
    assert probe.decoder_grads == [True] * 2
    learned = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    for name, parameter in model.model.encoder.named_parameters():
        torch.testing.assert_close(parameter.detach(), learned[f"model.encoder.{name}"])


def test_a_pretrained_encoder_is_left_alone_unless_asked(data_root: Path, tmp_path: Path) -> None:
    weights = tmp_path / "given.pth"
    torch.save(EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE).model.encoder.state_dict(), weights)
    model = EA2D(backbone="resnet18", pre_trained=False, backbone_weights=weights, image_size=SIZE, max_steps=2)
    assert not model.encoder_starts_random
    initial, probe = _encoder_state(model), EncoderProbe()
    _fit(model, data_root, tmp_path / "skip", EncoderPretraining(steps=3), probe)
    assert not _changed(initial, probe.at_train_start)

    model = EA2D(backbone="resnet18", pre_trained=False, backbone_weights=weights, image_size=SIZE, max_steps=2)
    probe = EncoderProbe()
    _fit(model, data_root, tmp_path / "always", EncoderPretraining(steps=3, when="always"), probe)
    assert _changed(initial, probe.at_train_start)


def test_the_exported_model_keeps_its_form(data_root: Path, tmp_path: Path) -> None:
    outputs = {}
    for name, callbacks in (("plain", []), ("pretrained", [EncoderPretraining(steps=2)])):
        model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
        run = _fit(model, data_root, tmp_path / name, *callbacks)
        exported = run.export(model=model, export_type=ExportType.TORCH, export_root=tmp_path / name)
        inferencer = torch.load(exported, weights_only=False)["model"].eval()
        outputs[name] = inferencer(torch.rand(1, 3, SIZE, SIZE))
        assert not any("pretext" in key or "head" in key for key in model.state_dict())
    plain, pretrained = outputs["plain"], outputs["pretrained"]
    assert type(plain) is type(pretrained)
    for field in ("pred_score", "anomaly_map", "pred_label", "pred_mask"):
        assert getattr(plain, field).shape == getattr(pretrained, field).shape, field


@pytest.mark.parametrize("model_class", [ReverseDistillation, Patchcore])
def test_anomalib_models_encoders_are_found_pretrained_and_loaded(
    model_class: type, data_root: Path, tmp_path: Path
) -> None:
    model = model_class(backbone="resnet18", pre_trained=False)
    initial = _encoder_state(model)
    pretraining = EncoderPretraining(steps=2, when="always", save_path=tmp_path / "encoder.pth")
    encoder, _ = find_encoder(model)
    pretraining.pretrain(encoder, iter([torch.rand(2, 3, SIZE, SIZE)] * 2), None, torch.device("cpu"))
    assert _changed(initial, _encoder_state(model))

    fresh = model_class(backbone="resnet18", pre_trained=False)
    torch.save(encoder.state_dict(), tmp_path / "encoder.pth")
    load_encoder_weights(fresh, tmp_path / "encoder.pth")
    assert not _changed(_encoder_state(model), _encoder_state(fresh))


def test_the_cosine_schedule_decays_the_rate_over_the_phase_in_engine_fit(data_root: Path, tmp_path: Path) -> None:
    model = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE, max_steps=2)
    pretraining = EncoderPretraining(steps=4, learning_rate=2e-3, schedule="cosine")
    _fit(model, data_root, tmp_path, pretraining)
    expected = [2e-3 * (1 + math.cos(math.pi * step / 4)) / 2 for step in range(4)]
    assert pretraining.learning_rates == pytest.approx(expected)
    assert len(pretraining.losses) == 4


def test_bad_settings_name_the_setting() -> None:
    with pytest.raises(ValueError, match="steps"):
        EncoderPretraining(steps=-1)
    with pytest.raises(ValueError, match="when"):
        EncoderPretraining(when="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="textures"):
        EncoderPretraining(textures=("ellipsoids",))
    with pytest.raises(ValueError, match="objective"):
        EncoderPretraining(objective="byol")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule"):
        EncoderPretraining(schedule="step")  # type: ignore[arg-type]


def test_simsiam_refuses_single_image_batches_with_the_fix() -> None:
    pretraining = EncoderPretraining(steps=2, objective="simsiam")
    encoder = EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE).model.encoder
    with pytest.raises(ValueError, match="train_batch_size"):
        pretraining.pretrain(encoder, iter([torch.rand(1, 3, SIZE, SIZE)] * 4), None, torch.device("cpu"))
    # a lone last image of an epoch is skipped, not counted
    batches = iter([torch.rand(3, 3, SIZE, SIZE), torch.rand(1, 3, SIZE, SIZE), torch.rand(3, 3, SIZE, SIZE)])
    pretraining.pretrain(encoder, batches, None, torch.device("cpu"))
    assert len(pretraining.losses) == 2
    with pytest.raises(TypeError, match="EncoderPretraining found no encoder"):
        find_encoder(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("processes", [1, 2])
def test_anomalib_cli_runs_the_phase_and_saves_the_encoder(processes: int, data_root: Path, tmp_path: Path) -> None:
    """``anomalib fit`` with the phase and freeze_encoder, in one process and under DDP with two CPU processes."""
    saved = tmp_path / "encoder.pth"
    command = [
        str(Path(sys.executable).parent / "anomalib"),
        "fit",
        "--model",
        "anomalib_ea2d.EA2D",
        "--model.backbone",
        "resnet18",
        "--model.pre_trained",
        "false",
        f"--model.image_size={SIZE}",
        "--model.max_steps",
        "2",
        "--data",
        "anomalib_ea2d.data.SyntheticBrainMRI",
        *tiny_synthetic_brain_cli(data_root, SIZE),
        "--data.train_batch_size",
        "4",
        "--trainer.accelerator",
        "cpu",
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.callbacks+=anomalib_ea2d.callbacks.EncoderPretraining",
        "--trainer.callbacks.steps",
        "2",
        "--trainer.callbacks.save_path",
        str(saved),
        "--trainer.callbacks.freeze_encoder",
        "true",
        "--trainer.strategy",
        "ddp" if processes > 1 else "auto",
        "--trainer.devices",
        str(processes),
        "--default_root_dir",
        str(tmp_path / "run"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EncoderPretraining" in result.stderr + result.stdout
    assert "stays fixed" in result.stderr + result.stdout
    reloaded = EA2D(backbone="resnet18", pre_trained=False, backbone_weights=saved, image_size=SIZE)
    assert _changed(
        EA2D(backbone="resnet18", pre_trained=False, image_size=SIZE).model.encoder.state_dict(),
        reloaded.model.encoder.state_dict(),
    )
    trained = torch.load(next((tmp_path / "run").rglob("*.ckpt")), map_location="cpu", weights_only=False)
    for name, parameter in reloaded.model.encoder.named_parameters():  # kept fixed through EA2D's steps
        torch.testing.assert_close(trained["state_dict"][f"model.encoder.{name}"], parameter.detach())
