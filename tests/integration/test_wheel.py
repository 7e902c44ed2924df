"""The built wheel works on its own: installed outside the checkout, it finds its bundled configs.

The wheel is built from this checkout with pip and hatchling (no build isolation, so no download),
then installed with pip into a fresh virtual environment, and Python runs there from a temporary
folder. The fresh environment reaches the dependencies (torch, anomalib, ...) through one ``.pth``
line naming the site-packages folder of the interpreter running the tests. A ``.pth`` line only puts
a folder on ``sys.path``; the ``.pth`` files inside that folder are not run, so an editable install
of a checkout there (``_editable_impl_anomalib_ea2d.pth``) stays out of the way, and ``PYTHON*``
variables (e.g. a ``PYTHONPATH`` naming the checkout) are dropped from the environment.

One probe interpreter imports the installed package and checks, without training anything: the
demo's default config and the data config it names, a paper recipe and its data config, the
benchmark presets, the start-up hook, ``python -m anomalib_ea2d.demo --help`` and the demo's error
for an unknown config name. ``python -m anomalib_ea2d.pipelines.benchmark ... --print-config`` (which loads a
preset through the command line and runs nothing) and ``python -m anomalib_ea2d.config_files`` run
as their own commands.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # 20-40 s: build, install, and one interpreter that imports anomalib

_PROBE = r"""
import contextlib, io, json, runpy, sys
import anomalib_ea2d
from anomalib_ea2d import config_files
from anomalib_ea2d.pipelines.benchmark.config import PRESET_DIR, load_preset
from anomalib_ea2d.demo import DEFAULT_CONFIG, load_config


def run_module(name, *args):
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [name, *args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


demo = load_config(DEFAULT_CONFIG)
recipe = load_config(config_files.bundled_config("oct2017"))
presets = {name: load_preset(name) for name in ("full", "smoke")}
import anomalib.models  # the wheel's start-up hook registers EA2D when anomalib.models is imported

print("PROBE=" + json.dumps({
    "package": anomalib_ea2d.__file__,
    "hook": sys.modules["anomalib_ea2d._hook"].__file__,
    "registered": getattr(anomalib.models, "EA2D", None) is not None,
    "config_dir": str(config_files.config_dir()),
    "default_config": str(DEFAULT_CONFIG),
    "preset_dir": str(PRESET_DIR),
    "demo_data": demo["data"]["class_path"],
    "demo_model": demo["model"]["class_path"],
    "recipe_data": recipe["data"]["class_path"],
    "preset_studies": {name: sorted(studies) for name, studies in presets.items()},
    "smoke_train_steps": presets["smoke"]["compare"].train_steps,
    "demo_help": run_module("anomalib_ea2d.demo", "--help"),
    "demo_unknown": run_module("anomalib_ea2d.demo", "--config", "no_such_demo", "--output", "unused"),
}))
"""


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 180) -> str:
    """Run ``command``; its stdout, or a failure showing the end of its stderr."""
    process = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert process.returncode == 0, f"{command} exited {process.returncode}:\n{process.stderr[-3000:]}"
    return process.stdout


def _clean_env() -> dict[str, str]:
    """This process's environment without ``PYTHON*`` variables, without the user site-packages."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout."""
    if importlib.util.find_spec("hatchling") is None:  # a test extra: a failure, not a skip
        pytest.fail("building the wheel needs hatchling: pip install -e '.[test]' (scripts/setup.sh does)")
    dist = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    _run([*command, "--wheel-dir", str(dist), str(REPO_ROOT)], cwd=dist)
    (built,) = dist.glob("anomalib_ea2d-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed and this interpreter's dependencies reachable."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root)
    python = root / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index"]
    _run([*pip, str(wheel)], cwd=root, env=_clean_env())
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root).strip())
    dependencies = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "zz_test_dependencies.pth").write_text("".join(f"{folder}\n" for folder in dependencies))
    return root


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty working folder outside the checkout."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def probe(venv: Path, elsewhere: Path) -> dict[str, Any]:
    """What the installed package reports about itself (see ``_PROBE``)."""
    env = {**_clean_env(), "CUDA_VISIBLE_DEVICES": ""}
    stdout = _run([str(venv / "bin" / "python"), "-c", _PROBE], cwd=elsewhere, env=env)
    line = next(ln for ln in stdout.splitlines() if ln.startswith("PROBE="))
    return json.loads(line.removeprefix("PROBE="))


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_wheel_carries_the_checkouts_configs_unchanged(wheel: Path) -> None:
    checkout = {
        path.relative_to(REPO_ROOT).as_posix(): path.read_bytes()
        for path in (REPO_ROOT / "configs").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            name.removeprefix("anomalib_ea2d/"): archive.read(name)
            for name in archive.namelist()
            if name.startswith("anomalib_ea2d/configs/")
        }
        top_level = {name.split("/", 1)[0] for name in archive.namelist()}
    assert "configs/synthetic_brain.yaml" in checkout
    assert shipped == checkout
    # Nothing but the package, its start-up hook and the metadata: no top-level ``configs`` folder.
    assert {name for name in top_level if not name.endswith(".dist-info")} == {
        "anomalib_ea2d",
        "anomalib_ea2d_hook.pth",
    }


def test_installed_package_is_the_wheels_copy(probe: dict[str, Any], venv: Path) -> None:
    for key in ("package", "hook", "config_dir", "default_config", "preset_dir"):
        assert _inside(probe[key], venv), (key, probe[key])
        assert not _inside(probe[key], REPO_ROOT), (key, probe[key])
    assert probe["registered"]  # the wheel's .pth ran its start-up hook


def test_demo_and_recipe_configs_load_with_their_data_configs(probe: dict[str, Any]) -> None:
    assert probe["default_config"].endswith("anomalib_ea2d/configs/synthetic_brain.yaml")
    assert probe["demo_model"] == "anomalib_ea2d.EA2D"
    assert probe["demo_data"] == "anomalib_ea2d.data.SyntheticBrainMRI"  # data/synthetic_brain.yaml, read in
    assert probe["recipe_data"] == "anomalib.data.Folder"  # data/oct2017.yaml, read in


def test_benchmark_presets_load(probe: dict[str, Any]) -> None:
    studies = ["ablation", "compare", "encoder", "goals", "gpu", "scaling"]
    assert probe["preset_studies"] == {"full": studies, "smoke": studies}
    assert probe["smoke_train_steps"] > 0


def test_demo_command_line(probe: dict[str, Any]) -> None:
    help_run = probe["demo_help"]
    assert help_run["code"] == 0, help_run["stderr"]
    assert "--config" in help_run["stdout"]
    assert "synthetic_brain.yaml" in help_run["stdout"]  # the default: the bundled config
    unknown = probe["demo_unknown"]
    assert unknown["code"] == 2
    assert "'no_such_demo' is neither a file nor a bundled config" in unknown["stderr"]
    assert "synthetic_brain.yaml" in unknown["stderr"]  # the choices are listed


def test_benchmark_command_line_prints_a_bundled_preset(venv: Path, elsewhere: Path) -> None:
    command = [str(venv / "bin" / "python"), "-m", "anomalib_ea2d.pipelines.benchmark", "scaling", "--preset", "smoke"]
    printed = json.loads(_run([*command, "--print-config"], cwd=elsewhere, env=_clean_env()))
    assert printed["scaling"]["sizes"]
    assert not any(elsewhere.iterdir())  # nothing written


def test_config_files_command_prints_bundled_paths(venv: Path, elsewhere: Path) -> None:
    command = [str(venv / "bin" / "python"), "-m", "anomalib_ea2d.config_files", "oct2017", "data/oct2017"]
    recipe, data = _run(command, cwd=elsewhere, env=_clean_env()).split()
    assert _inside(recipe, venv)
    assert Path(recipe).name == "oct2017.yaml"
    assert Path(data).parent.name == "data"
