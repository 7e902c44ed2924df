"""Bad inputs through the ``anomalib`` command line: each ends in one clear message at the end of the output.

Cases: files that are no checkpoint at all given as ``--ckpt_path`` (a Git LFS pointer, an HTML page,
text, other bytes, an empty file) to ``predict``, ``test``, ``export`` and ``train``; a
``MedicalFolder`` whose abnormal image has no mask and whose training folder holds a corrupt image
(error, and ``on_bad_image skip``, which trains on the rest with a warning per file); a diverging
run (``--model.lr 1e6``); and the
README's own ``anomalib predict --data <folder>`` on a folder holding a corrupt image.

Starting ``anomalib`` costs 10-20 s here, mostly imports, so the cases run in two processes: the
README's predict command as the real ``anomalib`` executable, and all the others in one Python
process that calls the same entry point (``anomalib.cli.cli.main``) once per case and prints an
uncaught error with the same ``sys.excepthook`` (rich's, installed by anomalib's CLI) the
executable would use, followed by a marker line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.pytorch import Trainer

from anomalib_ea2d import EA2D
from tests.helpers.cli import cli_env
from tests.helpers.tiny_data import FOLDER_ARGS, make_tiny_folder_dataset

ANOMALIB = str(Path(sys.executable).parent / "anomalib")
MODEL_ARGS = ["--model", "EA2D", "--model.backbone", "resnet18", "--model.pre_trained", "false"]
MODEL_ARGS += ["--model.image_size", "64"]
TRAINER_ARGS = ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]
TAIL_LINES = 8
"""The clear message must lie within this many last lines of a case's output."""

MARKER = "=== end of case {name}: exit code {code} ==="
DRIVER = """
import json, sys, traceback
from anomalib.cli.cli import main  # installs rich's traceback printer as sys.excepthook, as the executable does

for name, args in json.loads(sys.argv[1]):
    sys.argv = ["anomalib", *args]
    code = 0
    try:
        main()
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    sys.stdout.flush(); sys.stderr.flush()
    print(MARKER.format(name=name, code=code), flush=True)
"""

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 44820571\n"
)
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"


def _env() -> dict[str, str]:
    return cli_env(OMP_NUM_THREADS="1", COLUMNS="200")


def _folder_args(root: Path, data_class: str = "anomalib.data.Folder") -> list[str]:
    args = ["--data", data_class, "--data.root", str(root)]
    for key, value in FOLDER_ARGS.items():
        args += [f"--data.{key}", str(value)]
    return args


def _tail(output: str) -> str:
    """The last lines of ``output`` as one line (rich wraps long messages)."""
    return " ".join(" ".join(output.strip().splitlines()[-TAIL_LINES:]).split())


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG " * 4)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A clean tiny dataset, a broken copy of it, a predict folder with a corrupt image, bad checkpoints."""
    root = tmp_path_factory.mktemp("bad_inputs")
    clean = make_tiny_folder_dataset(root / "clean")
    broken = make_tiny_folder_dataset(root / "broken")
    (broken / "ground_truth/bad/002.png").unlink()  # abnormal image test/bad/002.png has no mask now
    _corrupt(broken / "train/good/p3_corrupt.jpg")
    predict = root / "predict"
    predict.mkdir()
    for index, source in enumerate(sorted((clean / "test/bad").iterdir())[:3]):
        (predict / f"p{index}.png").write_bytes(source.read_bytes())
    _corrupt(predict / "p3_corrupt.jpg")

    checkpoints = root / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "lfs.ckpt").write_text(LFS_POINTER)
    (checkpoints / "page.ckpt").write_text(HTML_PAGE)
    (checkpoints / "notes.ckpt").write_text("hello world\n")  # bare `KeyError: 101` from torch.load before
    (checkpoints / "bytes.ckpt").write_bytes(bytes(range(7, 256)) * 2)
    (checkpoints / "empty.ckpt").write_bytes(b"")
    valid = checkpoints / "model.ckpt"  # an untrained EA2D checkpoint, for the predict command
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(EA2D(backbone="resnet18", pre_trained=False, image_size=64))
    trainer.save_checkpoint(valid)
    return {"root": root, "clean": clean, "broken": broken, "predict": predict, "checkpoints": checkpoints}


@pytest.fixture(scope="module")
def outputs(inputs: dict[str, Path]) -> dict[str, tuple[int, str]]:
    """Run every case but the README predict command in one process: ``{case: (exit code, output)}``."""
    root, clean, broken, ckpts = inputs["root"], inputs["clean"], inputs["broken"], inputs["checkpoints"]
    medical = "anomalib_ea2d.data.MedicalFolder"

    def results(name: str) -> list[str]:
        return ["--default_root_dir", str(root / "results" / name)]

    cases = {
        "lfs_predict": [
            "predict", *MODEL_ARGS, "--data", str(clean / "test/good"), *TRAINER_ARGS,
            "--ckpt_path", str(ckpts / "lfs.ckpt"), *results("lfs"),
        ],
        "empty_test": [
            "test", *MODEL_ARGS, *_folder_args(clean), *TRAINER_ARGS, "--ckpt_path", str(ckpts / "empty.ckpt"),
            *results("empty"),
        ],
        "html_export": [
            "export", *MODEL_ARGS, "--ckpt_path", str(ckpts / "page.ckpt"), "--export_type", "torch",
            "--export_root", str(root / "results/html"),
        ],
        "text_predict": [
            "predict", *MODEL_ARGS, "--data", str(clean / "test/good"), *TRAINER_ARGS,
            "--ckpt_path", str(ckpts / "notes.ckpt"), *results("text"),
        ],
        "bytes_train": [
            "train", *MODEL_ARGS, *_folder_args(clean), *TRAINER_ARGS, "--trainer.max_steps", "1",
            "--ckpt_path", str(ckpts / "bytes.ckpt"), *results("bytes"),
        ],
        "broken_folder": [
            "train", *MODEL_ARGS, *_folder_args(broken, medical), *TRAINER_ARGS, "--trainer.max_steps", "1",
            *results("broken"),
        ],
        "diverging_train": [
            "train", *MODEL_ARGS, "--model.lr", "1e6", "--model.encoder_lr", "1e6", *_folder_args(clean),
            *TRAINER_ARGS, "--trainer.max_steps", "12", *results("diverging"),
        ],
        "broken_folder_skip": [
            "train", *MODEL_ARGS, *_folder_args(broken, medical), "--data.on_bad_image", "skip", *TRAINER_ARGS,
            "--trainer.max_steps", "1", *results("skip"),
        ],
    }  # fmt: skip
    driver = DRIVER.replace("MARKER", repr(MARKER))
    args = [sys.executable, "-c", driver, json.dumps(list(cases.items()))]
    run = subprocess.run(
        args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900, check=False
    )
    found: dict[str, tuple[int, str]] = {}
    start = 0
    for match in re.finditer(r"^=== end of case (\w+): exit code (\d+) ===$", run.stdout, flags=re.MULTILINE):
        found[match.group(1)] = (int(match.group(2)), run.stdout[start : match.start()])
        start = match.end()
    assert list(found) == list(cases), f"the driver did not finish every case:\n{run.stdout[-5000:]}"
    return found


def _failed_with(outputs: dict[str, tuple[int, str]], case: str, *phrases: str) -> str:
    code, output = outputs[case]
    tail = _tail(output)
    assert code != 0, f"{case} did not fail:\n{output[-3000:]}"
    for phrase in phrases:
        assert phrase in tail, f"{phrase!r} is not in the last {TAIL_LINES} lines of {case}:\n{output[-3000:]}"
    return output


@pytest.mark.parametrize(
    ("case", "name", "phrases"),
    [
        ("lfs_predict", "lfs.ckpt", ["is a Git LFS pointer", "not the checkpoint", "git lfs pull"]),
        ("empty_test", "empty.ckpt", ["is empty (0 bytes), not a checkpoint", "copy the model.ckpt"]),
        ("html_export", "page.ckpt", ["is an HTML page, not a checkpoint", "download the model.ckpt again"]),
        ("text_predict", "notes.ckpt", ["is a text file (it starts with 'hello world')", "pass the model.ckpt"]),
        ("bytes_train", "bytes.ckpt", ["is not a PyTorch checkpoint", "pass the model.ckpt"]),
    ],
)
def test_file_that_is_no_checkpoint(
    outputs: dict[str, tuple[int, str]], inputs: dict[str, Path], case: str, name: str, phrases: list[str]
) -> None:
    output = _failed_with(outputs, case, "CheckpointFormatError", str(inputs["checkpoints"] / name), *phrases)
    assert "weights_only=False" not in output, "advises unsafe loading for a file that is no torch file"


def test_missing_mask_and_corrupt_image_in_one_message(
    outputs: dict[str, tuple[int, str]], inputs: dict[str, Path]
) -> None:
    broken = inputs["broken"]
    tail = _tail(_failed_with(outputs, "broken_folder", "2 of 17 images of MedicalFolder 'tiny' cannot be used"))
    assert f"Mask file {broken / 'ground_truth/bad/002.png'} does not exist; add the mask or check mask_dir" in tail
    assert f"Could not read image {broken / 'train/good/p3_corrupt.jpg'}" in tail
    assert tail.endswith("--data.on_bad_image skip) to train without them.")
    assert ".." not in tail.replace("...", "")


def test_skip_mode_warns_for_each_file_left_out_and_trains(
    outputs: dict[str, tuple[int, str]], inputs: dict[str, Path]
) -> None:
    code, output = outputs["broken_folder_skip"]
    assert code == 0, output[-3000:]
    text = " ".join(output.split())
    broken = inputs["broken"]
    for image in (broken / "test/bad/002.png", broken / "train/good/p3_corrupt.jpg"):
        assert f"unusable image {image}:" in text
    assert "skipped 2 unusable images of 17" in text
    assert "image_AUROC" in text  # trained and tested on the rest


def test_diverging_run_stops_clearly_and_leaves_no_nan_checkpoint(
    outputs: dict[str, tuple[int, str]], inputs: dict[str, Path]
) -> None:
    """``--model.lr 1e6``: the run stops with the step and the fix, and writes no checkpoint at all.

    The first update at lr 1e6 already overflows the next step, inside the first epoch of two steps,
    so no validation ran and no checkpoint may exist: neither NaN weights nor NaN thresholds.
    """
    tail = _tail(_failed_with(outputs, "diverging_train", "FloatingPointError", "at step", "Lower lr/encoder_lr"))
    assert any(what in tail for what in ("loss became", "BatchNorm statistics", "validation scores", "gradients"))
    assert re.search(r"at step 1\b", tail), tail  # 8 training images in batches of 4: epoch 0 ends at step 2
    run = inputs["root"] / "results/diverging"
    assert list(run.rglob("config.yaml")), "the run's folder (where its checkpoints would go) was not created"
    assert list(run.rglob("*.ckpt")) == []


def test_readme_predict_command_on_folder_with_corrupt_image(inputs: dict[str, Path]) -> None:
    """``anomalib predict --model EA2D --data <folder> --ckpt_path ...``, the real executable."""
    args = [
        ANOMALIB, "predict", *MODEL_ARGS, "--data", str(inputs["predict"]), *TRAINER_ARGS,
        "--ckpt_path", str(inputs["checkpoints"] / "model.ckpt"),
        "--default_root_dir", str(inputs["root"] / "results/predict"),
    ]  # fmt: skip
    run = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode != 0
    tail = _tail(run.stderr)
    corrupt = inputs["predict"] / "p3_corrupt.jpg"
    assert f"1 of 4 images of predict folder {inputs['predict']} cannot be used" in tail, run.stderr[-3000:]
    assert f"Could not read image {corrupt}" in tail
    assert "re-export or remove it. Fix or remove these files" in tail
    assert "--data.on_bad_image skip" in tail
