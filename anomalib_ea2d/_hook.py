"""Start-up hook that makes ``EA2D`` known to anomalib without importing torch at every start.

The wheel installs ``anomalib_ea2d_hook.pth``, which imports this module when Python starts. It
only adds a meta-path finder: when (and if) ``anomalib.models`` is imported, the finder lets the
import complete and then imports :mod:`anomalib_ea2d.lightning_model`, which registers ``EA2D``.
Registration makes ``anomalib train --model EA2D`` (jsonargparse resolves subclasses of
``AnomalibModule`` among imported classes), ``anomalib.models.get_model("ea2d")`` and
``anomalib.models.EA2D`` (used by ``anomalib benchmark``) work.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

TARGET = "anomalib.models"
PLUGIN = "anomalib_ea2d.lightning_model"


def register(model_class: type) -> None:
    """Expose ``model_class`` as ``anomalib.models.<name>`` and allow its module in ``get_model``."""
    models = sys.modules.get(TARGET)
    if models is None:
        return
    setattr(models, model_class.__name__, model_class)
    allowed = getattr(models, "ALLOWED_MODULES", None)
    if isinstance(allowed, set):
        allowed.update({"anomalib_ea2d", model_class.__module__})


def _import_plugin(_module: ModuleType) -> None:
    if PLUGIN in sys.modules:  # being imported right now: it registers itself when done
        return
    try:
        importlib.import_module(PLUGIN)
    except Exception as error:  # noqa: BLE001 - never break anomalib because of the plugin
        sys.stderr.write(f"anomalib-ea2d: could not register EA2D with anomalib ({error}).\n")


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Find ``anomalib.models`` with the other finders and run the plugin import after it loads."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _import_plugin(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Install the finder once; if ``anomalib.models`` is already imported, register right away."""
    if TARGET in sys.modules:
        _import_plugin(sys.modules[TARGET])
    elif not any(isinstance(finder, _AfterImportFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder())


install()
