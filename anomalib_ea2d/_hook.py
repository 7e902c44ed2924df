"""Start-up hook that makes ``EA2D`` known to anomalib without importing torch at every start.

The wheel installs ``anomalib_ea2d_hook.pth``, which imports this module when Python starts. It
only adds a meta-path finder: when (and if) ``anomalib.models`` is imported, the finder lets the
import complete and then imports EA2D's Lightning module (:data:`PLUGIN`), which registers ``EA2D``.
Registration makes ``anomalib train --model EA2D`` (jsonargparse resolves subclasses of
``AnomalibModule`` among imported classes), ``anomalib.models.get_model("ea2d")`` and
``anomalib.models.EA2D`` (used by ``anomalib benchmark``) work.

Two more anomalib modules get an EA2D-only addition right after they load:

* ``anomalib.engine.engine``: ``Engine.predict(data_path=...)`` (``anomalib predict --data <path>``)
  of an EA2D model reads images with the medical-image reader (all files checked first) and
  predicts NIfTI volumes or DICOM series as volumes
  (:func:`anomalib_ea2d.data.readers.predict.route_predict_paths`);
* ``anomalib.cli.cli``: an EA2D model that cannot be built from the command line (no ImageNet weights
  offline) ends the command with its one message (:func:`anomalib_ea2d.cli_errors.report_plainly`),
  and ``--seed_everything N``, which anomalib's CLI declares but never applies, seeds EA2D runs
  before their classes are built (:func:`anomalib_ea2d.cli_seed.seed_ea2d_runs`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

TARGET = "anomalib.models"
PLUGIN = "anomalib_ea2d.models.image.ea2d.lightning_model"
LEGACY_PLUGIN = "anomalib_ea2d.lightning_model"
"""The module ``EA2D`` was defined in before the package layout; class paths naming it stay allowed."""
ENGINE = "anomalib.engine.engine"
CLI = "anomalib.cli.cli"


def register(model_class: type) -> None:
    """Expose ``model_class`` as ``anomalib.models.<name>`` and allow its module in ``get_model``."""
    models = sys.modules.get(TARGET)
    if models is None:
        return
    setattr(models, model_class.__name__, model_class)
    allowed = getattr(models, "ALLOWED_MODULES", None)
    if isinstance(allowed, set):
        allowed.update({"anomalib_ea2d", model_class.__module__, LEGACY_PLUGIN})


def before_instantiate_classes(cli_class: type, marker: str, action: Callable[[Any], None]) -> None:
    """Wrap ``cli_class.instantiate_classes`` once per ``marker`` so that ``action(cli)`` runs first.

    Example:
        >>> class FakeCLI:
        ...     def instantiate_classes(self) -> None: print("build")
        >>> before_instantiate_classes(FakeCLI, "greets", lambda cli: print("hello"))
        >>> before_instantiate_classes(FakeCLI, "greets", lambda cli: print("hello"))
        >>> FakeCLI().instantiate_classes()
        hello
        build
    """
    original: Callable[[Any], None] = cli_class.instantiate_classes
    if getattr(original, marker, False):  # functools.wraps carries the markers of inner wrappers outward
        return

    @functools.wraps(original)
    def instantiate_classes(self: Any) -> None:  # noqa: ANN401 - the CLI
        action(self)
        original(self)

    setattr(instantiate_classes, marker, True)
    cli_class.instantiate_classes = instantiate_classes  # type: ignore[method-assign]


def _import_plugin(_module: ModuleType) -> None:
    if PLUGIN in sys.modules:  # being imported right now: it registers itself when done
        return
    try:
        importlib.import_module(PLUGIN)
    except Exception as error:  # noqa: BLE001 - never break anomalib because of the plugin
        sys.stderr.write(f"anomalib-ea2d: could not register EA2D with anomalib ({error}).\n")


def _is_ea2d(model: object) -> bool:
    """Whether ``model`` is an EA2D module (no import: if EA2D's module is not loaded, nothing is EA2D)."""
    plugin = sys.modules.get(PLUGIN)
    ea2d = getattr(plugin, "EA2D", None)
    return ea2d is not None and isinstance(model, ea2d)


def _extend_engine(module: ModuleType) -> None:
    if not hasattr(module, "Engine"):  # still being imported (no start-up hook): leave it as it is
        return
    try:
        from anomalib_ea2d.data.readers.predict import route_predict_paths  # noqa: PLC0415 - torch-heavy

        route_predict_paths(module.Engine, serves=_is_ea2d)
    except Exception as error:  # noqa: BLE001 - never break anomalib because of the plugin
        sys.stderr.write(f"anomalib-ea2d: predicting images and volumes with --data <path> is unavailable ({error}).\n")


def _extend_cli(module: ModuleType) -> None:
    if not hasattr(module, "AnomalibCLI"):
        return
    try:
        from anomalib_ea2d.cli_errors import report_plainly  # noqa: PLC0415 - torch-heavy

        report_plainly(module.AnomalibCLI)
    except Exception as error:  # noqa: BLE001 - never break anomalib because of the plugin
        sys.stderr.write(f"anomalib-ea2d: plain command-line errors are unavailable ({error}).\n")
    try:
        from anomalib_ea2d.cli_seed import seed_ea2d_runs  # noqa: PLC0415 - torch-heavy

        seed_ea2d_runs(module.AnomalibCLI)
    except Exception as error:  # noqa: BLE001 - never break anomalib because of the plugin
        sys.stderr.write(f"anomalib-ea2d: --seed_everything is not applied to EA2D runs ({error}).\n")


AFTER_IMPORT: dict[str, Callable[[ModuleType], None]] = {
    TARGET: _import_plugin,
    ENGINE: _extend_engine,
    CLI: _extend_cli,
}
"""What runs right after each of these modules has been imported."""


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Find the modules of :data:`AFTER_IMPORT` with the other finders and run their additions after they load."""

    def __init__(self) -> None:
        self.pending = dict(AFTER_IMPORT)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        after = self.pending.pop(fullname, None)
        if after is None:
            return None
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            after(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Install the finder once; additions of modules already imported run right away."""
    if any(isinstance(finder, _AfterImportFinder) for finder in sys.meta_path):
        return
    finder = _AfterImportFinder()
    for name in list(finder.pending):
        if name in sys.modules:
            finder.pending.pop(name)(sys.modules[name])
    if finder.pending:
        sys.meta_path.insert(0, finder)


install()
