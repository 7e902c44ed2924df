"""The package layout: no import cycles, model-agnostic parts free of EA2D, old module paths kept as aliases.

Imports are read from the source with ``ast``, so the checks hold whatever a test run happens to
import. The model-agnostic check reads every ``import`` statement, also inside functions and under
``if TYPE_CHECKING:``; the cycle check reads those that run when a module is imported (everything
outside function bodies, ``TYPE_CHECKING`` blocks included): an import inside a function is how a
module uses another that imports it.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lightning
import pytest
import torch

import anomalib_ea2d
from anomalib_ea2d._aliases import MOVED

PACKAGE_DIR = Path(anomalib_ea2d.__file__).parent
EA2D_PACKAGE = "anomalib_ea2d.models.image.ea2d"
MODEL_AGNOSTIC = (
    "anomalib_ea2d.callbacks",
    "anomalib_ea2d.data",
    "anomalib_ea2d.metrics",
    "anomalib_ea2d.models.components",
    "anomalib_ea2d.post_processing",
    "anomalib_ea2d.utils",
    "anomalib_ea2d.visualization",
)
"""Packages that work with any anomalib model and must not import EA2D's model package."""
OLD_NAMES_OF_EA2D = {
    ("anomalib_ea2d.callbacks", "ContrastiveAugmentation"),
    ("anomalib_ea2d.metrics", "ea2d_evaluator"),
}
"""Names of EA2D that the old modules ``anomalib_ea2d.callbacks`` and ``.metrics`` held, now packages for any
model: resolved by name on first use (lazy exports), so that old class paths keep working. No other name."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _module_level(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``tree`` outside function bodies."""
    for child in ast.iter_child_nodes(tree):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield child
            yield from _module_level(child)


def _imports(name: str, anywhere: bool = True) -> Iterator[str]:
    """The package's modules that module ``name`` imports: anywhere in its source, or at import time only."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if anywhere else _module_level(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).rstrip(".")
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        yield from (target for target in targets if target in MODULES)


GRAPH: dict[str, set[str]] = {name: set(_imports(name)) for name in MODULES}
"""Every import of every module."""
IMPORT_TIME_GRAPH: dict[str, set[str]] = {name: set(_imports(name, anywhere=False)) for name in MODULES}
"""The imports that run when each module is imported."""


def _within(name: str, packages: tuple[str, ...] | str) -> bool:
    packages = (packages,) if isinstance(packages, str) else packages
    return any(name == package or name.startswith(package + ".") for package in packages)


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(IMPORT_TIME_GRAPH[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(IMPORT_TIME_GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_model_agnostic_parts_import_nothing_of_ea2d() -> None:
    offending = {
        name: sorted(target for target in targets if _within(target, EA2D_PACKAGE))
        for name, targets in GRAPH.items()
        if _within(name, MODEL_AGNOSTIC)
    }
    assert not {name: targets for name, targets in offending.items() if targets}


def test_model_agnostic_packages_name_ea2d_only_for_old_class_paths() -> None:
    named = set()
    for name in GRAPH:
        if not _within(name, MODEL_AGNOSTIC):
            continue
        for node in ast.walk(ast.parse(MODULES[name].read_text())):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(value, ast.Constant) and _within(str(value.value), EA2D_PACKAGE):
                        named.add((name, key.value if isinstance(key, ast.Constant) else None))
    assert named == OLD_NAMES_OF_EA2D


def test_ea2d_uses_the_model_agnostic_tools() -> None:
    used = set().union(*(targets for name, targets in GRAPH.items() if _within(name, EA2D_PACKAGE)))
    for package in ("anomalib_ea2d.callbacks", "anomalib_ea2d.metrics", "anomalib_ea2d.models.components"):
        assert any(_within(target, package) for target in used), package


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_module_paths_are_the_moved_modules(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)
    assert not (PACKAGE_DIR.parent / (old.replace(".", "/") + ".py")).exists()  # no file left behind


@pytest.mark.parametrize(
    "path",
    [
        "anomalib_ea2d.lightning_model.EA2D",
        "anomalib_ea2d.torch_model.EA2DModel",
        "anomalib_ea2d.roi.RegionOfInterest",
        "anomalib_ea2d.guards.InputGuard",
        "anomalib_ea2d.guards.ValidateAfterTraining",
        "anomalib_ea2d.callbacks.ContrastiveAugmentation",
        "anomalib_ea2d.metrics.RawScoreEvaluator",
        "anomalib_ea2d.metrics.ea2d_evaluator",
        "anomalib_ea2d.post_processing.SpecificityPostProcessor",
        "anomalib_ea2d.image_scores.ImageScores",
        "anomalib_ea2d.report.RunReport",
        "anomalib_ea2d.components.SelfAttention2d",
        "anomalib_ea2d.data.medical_folder.MedicalFolder",
        "anomalib_ea2d.data.medical_folder.MedicalPredictDataset",
        "anomalib_ea2d.data.synthetic_brain_mri.SyntheticBrainMRI",
        "anomalib_ea2d.data.volumes.SyntheticBrainVolumes",
        "anomalib_ea2d.data.volumes.VolumeResults",
        "anomalib_ea2d.benchmark.config.load_preset",
    ],
)
def test_old_class_paths_resolve(path: str) -> None:
    module, _, name = path.rpartition(".")
    assert getattr(importlib.import_module(module), name) is not None


@pytest.mark.parametrize(
    "package", ["anomalib_ea2d", "anomalib_ea2d.data", "anomalib_ea2d.callbacks", "anomalib_ea2d.metrics"]
)
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("anomalib_ea2d.benchmark", "anomalib_ea2d.pipelines.benchmark"),
        ("anomalib_ea2d.data.volumes.overlay", "anomaly_map"),
    ],
)
def test_python_m_runs_old_module_paths(module: str, expected: str) -> None:
    process = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=300, check=False
    )
    assert process.returncode == 0, process.stderr[-2000:]
    assert expected in process.stdout


def test_a_checkpoint_names_no_module_and_loads_through_the_old_class_path(tmp_path: Path) -> None:
    from anomalib_ea2d.lightning_model import EA2D as OLD_PATH_EA2D  # noqa: PLC0415

    from anomalib_ea2d import EA2D  # noqa: PLC0415

    model = EA2D(backbone="resnet18", pre_trained=False, image_size=64)
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    assert "anomalib_ea2d" not in repr(checkpoint["hyper_parameters"])  # no class path to go stale
    torch.save(checkpoint, tmp_path / "model.ckpt")
    loaded = OLD_PATH_EA2D.load_from_checkpoint(tmp_path / "model.ckpt", weights_only=True)
    assert type(loaded) is EA2D
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), rtol=0, atol=0, equal_nan=True)
