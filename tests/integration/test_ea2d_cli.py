"""EA2D through the plain ``anomalib`` command (train, test, predict, export) and the start-up hook.

Each call runs in a fresh process that never imports ``anomalib_ea2d`` itself: ``--model EA2D``
must resolve through the ``.pth`` hook installed with the package.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import cli_env
from tests.helpers.tiny_data import FOLDER_ARGS, make_tiny_folder_dataset

BIN = Path(sys.executable).parent
ANOMALIB = str(BIN / "anomalib")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def _data_args(root: Path) -> list[str]:
    args = ["--data", "anomalib.data.Folder", "--data.root", str(root)]
    for key, value in FOLDER_ARGS.items():
        args += [f"--data.{key}", str(value)]
    return args


MODEL_ARGS = [
    "--model",
    "EA2D",
    "--model.backbone",
    "resnet18",
    "--model.pre_trained",
    "false",
    "--model.image_size",
    "64",
]
TRAINER_ARGS = ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    make_tiny_folder_dataset(root / "data")
    return root


@pytest.fixture(scope="module")
def checkpoint(workdir: Path) -> Path:
    _run(
        ANOMALIB,
        "train",
        *MODEL_ARGS,
        *_data_args(workdir / "data"),
        *TRAINER_ARGS,
        "--trainer.max_steps",
        "3",
        "--trainer.callbacks+=anomalib_ea2d.ContrastiveAugmentation",
        "--trainer.callbacks.transforms=[rot180,hflip]",
        "--trainer.callbacks.warmup_steps=2",
        "--default_root_dir",
        str(workdir / "results"),
        cwd=workdir,
    )
    checkpoints = sorted((workdir / "results").rglob("*.ckpt"))
    assert checkpoints, "anomalib train wrote no checkpoint"
    return checkpoints[-1]


def test_seed_everything_makes_two_trainings_and_their_splits_identical(workdir: Path) -> None:
    """anomalib's CLI declares ``--seed_everything`` but never applies it; EA2D runs get it applied."""
    scores = []
    for run in ("seeded_a", "seeded_b"):
        output = _run(
            ANOMALIB, "train", *MODEL_ARGS, *_data_args(workdir / "data"), *TRAINER_ARGS, "--trainer.max_steps", "1",
            "--seed_everything", "3", "--default_root_dir", str(workdir / run), cwd=workdir,
        )  # fmt: skip
        assert "Seed set to 3" in output.stdout + output.stderr
        (table,) = (workdir / run).rglob("image_scores.csv")
        with table.open(newline="") as handle:
            scores.append([(row["image_path"], row["score"]) for row in csv.DictReader(handle)])
    assert scores[0], "the test split is empty"
    assert scores[0] == scores[1]  # the same test images (split) and the same scores (weights)

    # a later `anomalib test` of the checkpoint draws training's split: no validation image in its test set
    (checkpoint,) = (workdir / "seeded_a").rglob("*.ckpt")
    _run(
        ANOMALIB, "test", *MODEL_ARGS, *_data_args(workdir / "data"), *TRAINER_ARGS, "--seed_everything", "3",
        "--ckpt_path", str(checkpoint), "--default_root_dir", str(workdir / "seeded_test"), cwd=workdir,
    )  # fmt: skip
    (table,) = (workdir / "seeded_test").rglob("image_scores.csv")
    with table.open(newline="") as handle:
        tested = [(row["image_path"], row["score"]) for row in csv.DictReader(handle)]
    assert tested == scores[0]


def test_python_start_does_not_import_torch() -> None:
    code = "import sys; assert 'torch' not in sys.modules, 'torch imported at start-up'; print('ok')"
    assert _run(sys.executable, "-c", code, cwd=Path.cwd()).stdout.strip() == "ok"


@pytest.mark.parametrize(
    "first_import",
    [
        "import anomalib.models",
        "from anomalib_ea2d import EA2DModel",
        "import anomalib_ea2d.models.image.ea2d.lightning_model",
        "import anomalib_ea2d.lightning_model",  # the module path from before the package layout
    ],
)
def test_hook_registers_ea2d_with_anomalib_models(first_import: str) -> None:
    """EA2D is registered, and the predict/CLI additions made, whichever is imported first."""
    code = (
        f"{first_import}; import anomalib.models as m, anomalib_ea2d; "
        "assert m.EA2D is anomalib_ea2d.EA2D; "
        "assert type(m.get_model('ea2d', backbone='resnet18', pre_trained=False)) is m.EA2D; "
        "assert type(m.get_model({'class_path': 'EA2D', 'init_args': {'pre_trained': False}})) is m.EA2D; "
        "assert m.AnomalibModule in m.EA2D.__bases__; "
        "import anomalib.engine.engine as e, anomalib.cli.cli as c; "  # the EA2D-only additions are in place too
        "assert e.Engine.predict.routes_predict_paths; assert c.AnomalibCLI.instantiate_classes.reports_plainly; "
        "print('ok')"
    )
    assert _run(sys.executable, "-c", code, cwd=Path.cwd()).stdout.strip().endswith("ok")


def test_print_config_shows_recipe(workdir: Path) -> None:
    output = _run(
        ANOMALIB, "train", "--model", "EA2D", *_data_args(workdir / "data"), "--print_config", cwd=workdir
    ).stdout
    lines = ("class_path: anomalib_ea2d.EA2D", "encoder_lr: 1.0e-05", "max_steps: 2000", "bn_momentum: 0.01")
    for line in (*lines, "inference_path: fused"):
        assert line in output


def test_offline_imagenet_weights_end_train_with_the_one_message(workdir: Path, tmp_path: Path) -> None:
    """Default ``pre_trained=True`` with no cached weights and no network: one clear message, no parser traceback."""
    args = [ANOMALIB, "train", "--model", "EA2D", "--model.backbone", "resnet18", *_data_args(workdir / "data")]
    args += [*TRAINER_ARGS, "--trainer.max_steps", "1", "--default_root_dir", str(tmp_path / "results")]
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf/hub")}
    env = cli_env(**offline, TORCH_HOME=str(tmp_path / "torch"), COLUMNS="200")
    result = subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "ImageNet weights 'resnet18.tv_in1k' are not in the local cache and HF_HUB_OFFLINE is set" in message
    assert "--model.backbone_weights" in message
    assert "--model.pre_trained false" in message
    for noise in ("Union subtypes", "Traceback"):
        assert noise not in result.stderr + result.stdout
    assert not list((tmp_path / "results").rglob("*.ckpt"))


def test_cli_test(workdir: Path, checkpoint: Path) -> None:
    """``anomalib test`` with the full class path (training used the short name ``EA2D``)."""
    full_path_args = [*MODEL_ARGS]
    full_path_args[full_path_args.index("EA2D")] = "anomalib_ea2d.EA2D"
    output = _run(
        ANOMALIB,
        "test",
        *full_path_args,
        *_data_args(workdir / "data"),
        *TRAINER_ARGS,
        "--ckpt_path",
        str(checkpoint),
        "--default_root_dir",
        str(workdir / "results"),
        cwd=workdir,
    )
    assert "image_AUROC" in output.stdout + output.stderr


def test_cli_test_plain_inference_path_scores_as_the_default(workdir: Path, checkpoint: Path) -> None:
    """``--model.inference_path plain`` (the trainable modules) gives the default fused copy's raw scores."""
    scores = {}
    for path in ("fused", "plain"):
        root = workdir / f"inference_path_{path}"
        data = [*_data_args(workdir / "data"), "--data.seed", "0"]  # the same validation/test split
        args = [*MODEL_ARGS, "--model.inference_path", path, *data, *TRAINER_ARGS, "--ckpt_path", str(checkpoint)]
        _run(ANOMALIB, "test", *args, "--default_root_dir", str(root), cwd=workdir)
        (table,) = root.rglob("image_scores.csv")
        with table.open(newline="") as file:
            scores[path] = {row["image_path"]: float(row["score"]) for row in csv.DictReader(file)}
    assert scores["fused"].keys() == scores["plain"].keys()
    assert len(scores["fused"]) > 0
    assert max(abs(value - scores["plain"][name]) for name, value in scores["fused"].items()) <= 1e-5


def test_cli_predict(workdir: Path, checkpoint: Path) -> None:
    output = _run(
        ANOMALIB,
        "predict",
        *MODEL_ARGS,
        "--data",
        str(workdir / "data" / "test" / "bad"),
        *TRAINER_ARGS,
        "--ckpt_path",
        str(checkpoint),
        "--default_root_dir",
        str(workdir / "predict"),
        cwd=workdir,
    )
    assert output.returncode == 0
    assert list((workdir / "predict").rglob("*.png")), "predict wrote no visualisations"


def test_cli_predict_with_other_settings_than_the_checkpoint_names_them(workdir: Path, checkpoint: Path) -> None:
    """``--model.image_size`` not repeated: one sentence naming it, not predictions at another size."""
    args = [*MODEL_ARGS[: MODEL_ARGS.index("--model.image_size")], "--data", str(workdir / "data" / "test" / "bad")]
    args += [*TRAINER_ARGS, "--ckpt_path", str(checkpoint), "--default_root_dir", str(workdir / "predict_256")]
    result = subprocess.run([ANOMALIB, "predict", *args], cwd=workdir, env=cli_env(COLUMNS="200"),
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert "was trained with image_size=64, but this EA2D was built with image_size=256" in message
    assert "--model.image_size 64" in message
    assert not list((workdir / "predict_256").rglob("*.png"))


@pytest.mark.parametrize("export_type", ["torch", "onnx", "openvino"])
def test_cli_export(workdir: Path, checkpoint: Path, export_type: str) -> None:
    target = workdir / f"export_{export_type}"
    _run(
        ANOMALIB,
        "export",
        *MODEL_ARGS,
        "--ckpt_path",
        str(checkpoint),
        "--export_type",
        export_type,
        "--export_root",
        str(target),
        cwd=workdir,
    )
    suffix = {"torch": ".pt", "onnx": ".onnx", "openvino": ".xml"}[export_type]
    assert list(target.rglob(f"*{suffix}")), f"no {suffix} file under {target}"


def test_cli_ddp_on_two_cpu_processes(workdir: Path) -> None:
    """Lightning DDP (how users scale past one GPU) trains EA2D, here with two CPU processes.

    With the OCT2017 switch ``freeze_encoder_bn``: the encoder's statistics
    must leave training exactly as they were initialised (0 mean, unit variance, no batch counted)
    while the decoders' move. With the medical operating point, both processes set the threshold
    from the normal validation images of both.
    """
    target = workdir / "ddp"
    output = _run(
        ANOMALIB,
        "train",
        *MODEL_ARGS,
        *_data_args(workdir / "data"),
        "--data.train_batch_size",
        "2",
        "--trainer.accelerator",
        "cpu",
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--model.freeze_encoder_bn",
        "true",
        "--model.post_processor",
        "anomalib_ea2d.SpecificityPostProcessor",
        "--trainer.max_steps",
        "2",
        "--default_root_dir",
        str(target),
        cwd=workdir,
    )
    text = output.stdout + output.stderr
    assert "max_steps=2" in text
    assert "image_AUROC" in text
    # One line per process (rich's console copy is cut short); each process holds 1 of the 2 normal validation images.
    operating_points = re.findall(r"Operating point: image threshold (\S+) flags .* of (\d+) normal", text)
    assert len(operating_points) == 2, text[-3000:]
    assert operating_points[0] == operating_points[1]
    assert int(operating_points[0][1]) == 2
    checkpoints = list(target.rglob("*.ckpt"))
    assert checkpoints
    state = torch.load(checkpoints[0], weights_only=True)["state_dict"]
    encoder = {k: v for k, v in state.items() if k.startswith("model.encoder.") and "running_" in k}
    assert encoder
    for name, value in encoder.items():
        assert torch.equal(value, torch.zeros_like(value) if "mean" in name else torch.ones_like(value)), name
    decoder_means = [v for k, v in state.items() if k.startswith("model.branches.") and k.endswith("running_mean")]
    assert any(bool(v.abs().sum() > 0) for v in decoder_means)
