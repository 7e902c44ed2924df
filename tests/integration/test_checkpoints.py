"""Checkpoints end to end: reload gives identical predictions, wrong files give clear errors, resume is exact.

Training runs through anomalib's Engine on a tiny 16-bit :class:`MedicalFolder` set whose images
have awkward sizes (5x7, 45x70, 33x31: not multiples of 32 before pre-processing), so the same runs
also cover reading such images for training, test and predict. ResNet-18 without pretrained weights,
32 px inputs, CPU, deterministic.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch
from anomalib.engine import Engine
from anomalib.models import ReverseDistillation
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from PIL import Image
from torch.utils.data import DataLoader

from anomalib_ea2d import EA2D, EA2DModel
from anomalib_ea2d.data import MedicalFolder
from anomalib_ea2d.models.image.ea2d.checkpoint import CheckpointFormatError
from anomalib_ea2d.models.image.ea2d.checkpoint_settings import CheckpointSettingsError
from anomalib_ea2d.models.image.ea2d.reference import PREFIX_MAP
from tests.helpers.cli import cli_env
from tests.helpers.engine import cpu_engine
from tests.helpers.images import write_png16
from tests.helpers.tiny_data import medical_folder

IMAGE_SIZE = 32
TRAIN_SIZES = [(32, 32), (45, 70), (5, 7), (40, 40), (64, 48), (33, 31), (32, 32), (50, 50)]
BATCH = len(TRAIN_SIZES)  # one training step per epoch
ANOMALIB = str(Path(sys.executable).parent / "anomalib")


pytestmark = pytest.mark.usefixtures("one_thread")


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 2 * np.pi, 2)
    wave = np.sin(xx / 3 + phase[0]) * np.cos(yy / 4 + phase[1])
    return 30000 + 12000 * wave + rng.normal(0, 800, (height, width))


def make_medical_dataset(root: Path, seed: int = 0) -> Path:
    """16-bit grayscale PNGs: normal training/test images, abnormal test images with masks."""
    rng = np.random.default_rng(seed)
    layout = {"train/good": TRAIN_SIZES, "test/good": [(45, 70), (32, 32)], "test/bad": [(45, 70), (40, 40)]}
    for split, sizes in layout.items():
        for index, (height, width) in enumerate(sizes):
            image = _texture(rng, height, width)
            if split == "test/bad":
                mask = np.zeros((height, width), np.uint8)
                mask[height // 4 : height // 2, width // 4 : width // 2] = 255
                image[mask > 0] = 64000
                (root / "ground_truth/bad").mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(root / "ground_truth/bad" / f"{index}.png")
            write_png16(root / split / f"{index}.png", image)
    return root


def _datamodule(root: Path) -> MedicalFolder:
    return medical_folder(
        root,
        "ckpt",
        normal_dir="train/good",
        normal_test_dir="test/good",
        abnormal_dir="test/bad",
        mask_dir="ground_truth/bad",
        train_batch_size=BATCH,
        eval_batch_size=BATCH,
        val_split_mode="same_as_test",  # no random split: every run predicts the same images
    )


def _model() -> EA2D:
    return EA2D(backbone="resnet18", pre_trained=False, image_size=IMAGE_SIZE)


def _engine(root: Path, **kwargs: object) -> Engine:
    return cpu_engine(root, deterministic=True, **kwargs)


def _checkpoint(engine: Engine) -> Path:
    callback = engine.trainer.checkpoint_callback
    assert callback is not None
    return Path(callback.best_model_path or callback.last_model_path)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_medical_dataset(tmp_path_factory.mktemp("medical"))


@pytest.fixture(scope="module")
def trained(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[EA2D, Path]:
    seed_everything(0)
    engine = _engine(tmp_path_factory.mktemp("fit"), max_steps=1)
    model = _model()
    engine.fit(model=model, datamodule=_datamodule(data_root))
    return model, _checkpoint(engine)


def _predictions(model: EA2D, data_root: Path, tmp_path: Path, ckpt_path: Path | None = None) -> torch.Tensor:
    batches = _engine(tmp_path).predict(model=model, datamodule=_datamodule(data_root), ckpt_path=ckpt_path)
    assert batches
    return torch.cat([torch.cat([b.pred_score.flatten(), b.anomaly_map.flatten()]) for b in batches])


def test_a_training_batch_of_one_32_px_image_stops_with_one_sentence(data_root: Path, tmp_path: Path) -> None:
    """Through Engine.fit: the 8 training images in batches of 7 leave a last batch of one."""
    datamodule = medical_folder(
        data_root,
        "ckpt",
        normal_dir="train/good",
        normal_test_dir="test/good",
        abnormal_dir="test/bad",
        mask_dir="ground_truth/bad",
        train_batch_size=BATCH - 1,
        val_split_mode="same_as_test",
    )
    with pytest.raises(ValueError, match="cannot train on a batch of one 32x32 image"):
        _engine(tmp_path, max_steps=2).fit(model=_model(), datamodule=datamodule)


# --- save -> load -> identical predictions ----------------------------------------------------------


def test_reload_gives_identical_predictions(trained: tuple[EA2D, Path], data_root: Path, tmp_path: Path) -> None:
    model, checkpoint = trained
    expected = _predictions(model, data_root, tmp_path / "a")
    assert torch.isfinite(expected).all()

    loaded = EA2D.load_from_checkpoint(checkpoint, weights_only=True)
    torch.testing.assert_close(_predictions(loaded, data_root, tmp_path / "b"), expected, rtol=0, atol=0)

    # the trainer's --ckpt_path route (what `anomalib test/predict --ckpt_path` runs) into a fresh model
    fresh = _predictions(_model(), data_root, tmp_path / "c", ckpt_path=checkpoint)
    torch.testing.assert_close(fresh, expected, rtol=0, atol=0)


def test_random_weights_are_announced_when_training_starts_not_when_a_checkpoint_loads(
    trained: tuple[EA2D, Path], data_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, checkpoint = trained
    said = "starts from random weights"
    with caplog.at_level("DEBUG", logger="anomalib_ea2d"):
        loaded = EA2D.load_from_checkpoint(checkpoint, weights_only=True)
        _predictions(loaded, data_root, tmp_path / "predict", ckpt_path=checkpoint)
    assert not [r for r in caplog.records if said in r.getMessage()]
    caplog.clear()
    with caplog.at_level("INFO", logger="anomalib_ea2d"):
        _engine(tmp_path / "fit", max_steps=1).fit(model=_model(), datamodule=_datamodule(data_root))
    assert len([r for r in caplog.records if said in r.getMessage() and r.levelname == "WARNING"]) == 1


def test_checkpoint_holds_only_safe_types(trained: tuple[EA2D, Path]) -> None:
    _, checkpoint = trained
    content = torch.load(checkpoint, weights_only=True, map_location="cpu")  # raises on pickled objects
    assert content["hyper_parameters"]["backbone"] == "resnet18"


def test_load_needs_neither_network_nor_the_backbone_file(trained: tuple[EA2D, Path], tmp_path: Path) -> None:
    model, _ = trained
    weights = tmp_path / "resnet18.pth"
    torch.save({k: v for k, v in model.model.encoder.state_dict().items()}, weights)
    source = EA2D(backbone="resnet18", pre_trained=True, backbone_weights=weights, image_size=IMAGE_SIZE)
    source.load_state_dict(model.state_dict())
    saved = tmp_path / "with-path.ckpt"
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(source)
    trainer.save_checkpoint(saved)
    weights.unlink()  # e.g. the checkpoint moved to another machine; pre_trained=True must not download either
    loaded = EA2D.load_from_checkpoint(saved, weights_only=True)
    for key, value in model.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"image_size": 64}, "image_size=32, but this EA2D was built with image_size=64"),
        ({"backbone": "resnet34"}, "backbone='resnet18', but this EA2D was built with backbone='resnet34'"),
        ({"standardize_maps": True}, "standardize_maps=False, but this EA2D was built with standardize_maps=True"),
        ({"roi": True}, "roi=None, but this EA2D was built with roi=True"),
    ],
)
def test_a_checkpoint_into_a_model_built_otherwise_names_the_settings(
    trained: tuple[EA2D, Path], data_root: Path, tmp_path: Path, settings: dict, named: str
) -> None:
    """The trainer's ``ckpt_path`` route: weights of other shapes or scores at another size never load silently."""
    _, checkpoint = trained
    model = EA2D(**{"backbone": "resnet18", "pre_trained": False, "image_size": IMAGE_SIZE, **settings})
    with pytest.raises(CheckpointSettingsError, match=re.escape(named)):
        _engine(tmp_path).predict(model=model, datamodule=_datamodule(data_root), ckpt_path=checkpoint)


# --- wrong files into the wrong entry point ---------------------------------------------------------


@pytest.fixture(scope="module")
def reference_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state dict with the paper's reference key names (convert_reference_state_dict input)."""
    to_reference = {ours: theirs for theirs, ours in PREFIX_MAP.items()}
    state = {}
    for key, value in EA2DModel(backbone="resnet18", pre_trained=False).state_dict().items():
        prefix = next(p for p in to_reference if key.startswith(p))
        state[to_reference[prefix] + key[len(prefix) :]] = value
    path = tmp_path_factory.mktemp("reference") / "ea2d_reference.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def other_model_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ReverseDistillation checkpoint, laid out as Lightning saves one (hyperparameters included)."""
    model = ReverseDistillation(backbone="resnet18", pre_trained=False)
    path = tmp_path_factory.mktemp("other") / "reverse_distillation.ckpt"
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            "pytorch-lightning_version": lightning.__version__,
        },
        path,
    )
    return path


def test_reference_file_into_load_from_checkpoint(reference_file: Path) -> None:
    with pytest.raises(CheckpointFormatError, match=r"reference EA2D code.*convert_reference_state_dict"):
        EA2D.load_from_checkpoint(reference_file)


def test_reference_file_into_ckpt_path(reference_file: Path, data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointFormatError, match=r"reference EA2D code.*convert_reference_state_dict"):
        _engine(tmp_path).test(model=_model(), datamodule=_datamodule(data_root), ckpt_path=reference_file)


def test_reference_state_dict_into_model_load_state_dict(reference_file: Path) -> None:
    model = EA2DModel(backbone="resnet18", pre_trained=False)
    state = torch.load(reference_file, weights_only=True)
    with pytest.raises(CheckpointFormatError, match="convert_reference_state_dict"):
        model.load_state_dict(state)


def test_other_model_checkpoint_is_named(other_model_checkpoint: Path, data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointFormatError, match=r"reverse_distillation, not of EA2D"):
        EA2D.load_from_checkpoint(other_model_checkpoint)
    with pytest.raises(CheckpointFormatError, match=r"another model \(its weights are model\.bottleneck"):
        EA2D.load_from_checkpoint(other_model_checkpoint, weights_only=False)
    with pytest.raises(CheckpointFormatError, match=r"reverse_distillation, not of EA2D"):
        _engine(tmp_path).test(model=_model(), datamodule=_datamodule(data_root), ckpt_path=other_model_checkpoint)


def test_cli_wrong_checkpoint_message_and_exit_code(reference_file: Path, data_root: Path, tmp_path: Path) -> None:
    """``anomalib test --ckpt_path`` with a reference file: the message reaches the user, exit code != 0."""
    env = cli_env(OMP_NUM_THREADS="1")
    args = [
        ANOMALIB, "test", "--model", "EA2D", "--model.backbone", "resnet18", "--model.pre_trained", "false",
        "--model.image_size", str(IMAGE_SIZE), "--data", "anomalib_ea2d.data.medical_folder.MedicalFolder",  # old path
        "--data.name", "cli", "--data.root", str(data_root), "--data.normal_dir", "train/good",
        "--data.abnormal_dir", "test/bad", "--data.normal_test_dir", "test/good", "--data.num_workers", "0",
        "--trainer.accelerator", "cpu", "--default_root_dir", str(tmp_path), "--ckpt_path", str(reference_file),
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "convert_reference_state_dict" in result.stdout + result.stderr


# --- interrupted training resumes to the same weights ------------------------------------------------


class _CrashAt(Callback):
    """Raise (like a killed job) when training reaches ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: object, idx: int) -> None:
        if trainer.global_step == self.step:
            msg = "simulated crash"
            raise RuntimeError(msg)


def _fit(
    root: Path, data_root: Path, max_steps: int, ckpt_path: Path | None = None, crash_at: int | None = None
) -> tuple[EA2D, Engine]:
    seed_everything(0)
    datamodule = _datamodule(data_root)
    datamodule.setup()
    # a fixed data order: Lightning does not store the sampler's RNG state, so a shuffled order after
    # a resume differs from the uninterrupted run's (see docs/troubleshooting.md, "Resuming training")
    train = DataLoader(
        datamodule.train_data, batch_size=BATCH, shuffle=False, collate_fn=datamodule.train_data.collate_fn
    )
    callbacks = [_CrashAt(crash_at)] if crash_at is not None else []
    engine = _engine(root, max_steps=max_steps, callbacks=callbacks, limit_val_batches=0)
    model = _model()
    engine.fit(model=model, train_dataloaders=train, ckpt_path=ckpt_path)
    return model, engine


def test_resume_reaches_the_uninterrupted_weights(data_root: Path, tmp_path: Path) -> None:
    steps = 2
    uninterrupted, _ = _fit(tmp_path / "full", data_root, steps)

    with pytest.raises(RuntimeError, match="simulated crash"):
        _fit(tmp_path / "crashed", data_root, steps, crash_at=1)
    saved = sorted((tmp_path / "crashed").rglob("*.ckpt"))
    assert saved, "no checkpoint was written before the crash"
    assert torch.load(saved[-1], weights_only=True)["global_step"] == 1  # the end of the first epoch

    resumed, engine = _fit(tmp_path / "resumed", data_root, steps, ckpt_path=saved[-1])
    assert engine.trainer.global_step == steps
    expected = uninterrupted.state_dict()
    for key, value in resumed.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-6, equal_nan=True, msg=key)
        else:
            assert torch.equal(value, expected[key]), key
    at_crash = torch.load(saved[-1], weights_only=True)["state_dict"]
    assert any(
        not torch.equal(value, at_crash[key]) for key, value in resumed.state_dict().items() if key.startswith("model.")
    ), "the resumed run did not train: the comparison above would prove nothing"
