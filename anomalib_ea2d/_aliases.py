"""Old module paths, kept as aliases of the modules that moved when the package took anomalib's layout.

:data:`MOVED` maps each old dotted path to the module that holds its code now. A meta-path finder,
installed when :mod:`anomalib_ea2d` is imported, makes ``import <old path>`` give the new module
itself — the same module object, so classes, functions and module state are shared, and code and
configs written for the old paths keep working (``class_path: anomalib_ea2d.roi.RegionOfInterest``,
``from anomalib_ea2d.torch_model import EA2DModel``, ``anomalib.models.get_model`` with
``anomalib_ea2d.lightning_model.EA2D``). The submodules of a moved package follow it
(``anomalib_ea2d.benchmark.config`` is ``anomalib_ea2d.pipelines.benchmark.config``), and
``python -m <old path>`` runs the new module (``python -m anomalib_ea2d.benchmark``).

No file stays at an old path: each moved file is a plain rename in git, so edits made to it on
other branches follow it when they are merged.

Example:
    >>> import anomalib_ea2d.roi, anomalib_ea2d.callbacks.roi
    >>> anomalib_ea2d.roi is anomalib_ea2d.callbacks.roi
    True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType

MOVED: dict[str, str] = {
    # EA2D's own model package
    "anomalib_ea2d.anomaly_map": "anomalib_ea2d.models.image.ea2d.anomaly_map",
    "anomalib_ea2d.checkpoint": "anomalib_ea2d.models.image.ea2d.checkpoint",
    "anomalib_ea2d.components": "anomalib_ea2d.models.image.ea2d.components",
    "anomalib_ea2d.guards": "anomalib_ea2d.models.image.ea2d.guards",  # with the generic guards it re-exports
    "anomalib_ea2d.lightning_model": "anomalib_ea2d.models.image.ea2d.lightning_model",
    "anomalib_ea2d.loss": "anomalib_ea2d.models.image.ea2d.loss",
    "anomalib_ea2d.map_statistics": "anomalib_ea2d.models.image.ea2d.map_statistics",
    "anomalib_ea2d.recipe": "anomalib_ea2d.models.image.ea2d.recipe",
    "anomalib_ea2d.reference": "anomalib_ea2d.models.image.ea2d.reference",
    "anomalib_ea2d.torch_model": "anomalib_ea2d.models.image.ea2d.torch_model",
    # layers for any model
    "anomalib_ea2d.backbone": "anomalib_ea2d.models.components.backbone",
    "anomalib_ea2d.components.batchnorm": "anomalib_ea2d.models.components.batchnorm",
    "anomalib_ea2d.components.fusion": "anomalib_ea2d.models.components.fusion",
    # callbacks, visualisation, utilities and the benchmark pipeline, for any anomalib model (the old
    # modules anomalib_ea2d.metrics and .post_processing are packages of the same names now)
    "anomalib_ea2d.image_scores": "anomalib_ea2d.callbacks.image_scores",
    "anomalib_ea2d.raw_scores": "anomalib_ea2d.callbacks.raw_predictions",
    "anomalib_ea2d.roi": "anomalib_ea2d.callbacks.roi",
    "anomalib_ea2d.data.volumes.results": "anomalib_ea2d.callbacks.volume_results",
    "anomalib_ea2d.report": "anomalib_ea2d.visualization.report",
    "anomalib_ea2d.data.volumes.overlay": "anomalib_ea2d.visualization.volume_overlay",
    "anomalib_ea2d.quiet": "anomalib_ea2d.utils.quiet",
    "anomalib_ea2d.benchmark": "anomalib_ea2d.pipelines.benchmark",
    # data: datamodules, datasets, readers, generators, the paper datasets' preparation
    "anomalib_ea2d.data.medical_folder": "anomalib_ea2d.data.datamodules.medical_folder",
    "anomalib_ea2d.data.synthetic_brain_mri": "anomalib_ea2d.data.datamodules.synthetic_brain_mri",
    "anomalib_ea2d.data.image_io": "anomalib_ea2d.data.readers.image",
    "anomalib_ea2d.data.mask_pairing": "anomalib_ea2d.data.readers.mask_pairing",
    "anomalib_ea2d.data.predict_reader": "anomalib_ea2d.data.readers.predict",
    "anomalib_ea2d.data.synthetic_brain": "anomalib_ea2d.data.generators.synthetic_brain",
    "anomalib_ea2d.data.synthetic_brain_anatomy": "anomalib_ea2d.data.generators.anatomy",
    "anomalib_ea2d.data.synthetic_brain_lesions": "anomalib_ea2d.data.generators.lesions",
    "anomalib_ea2d.data.synthetic_brain_volumes": "anomalib_ea2d.data.generators.synthetic_brain_volumes",
    "anomalib_ea2d.data.aptos2019": "anomalib_ea2d.data.prepare.aptos2019",
    "anomalib_ea2d.data.br35h": "anomalib_ea2d.data.prepare.br35h",
    "anomalib_ea2d.data.fundus": "anomalib_ea2d.data.prepare.fundus",
    "anomalib_ea2d.data.isic2018": "anomalib_ea2d.data.prepare.isic2018",
    "anomalib_ea2d.data.oct2017": "anomalib_ea2d.data.prepare.oct2017",
    "anomalib_ea2d.data.splits": "anomalib_ea2d.data.prepare.splits",
}
"""Old module path -> the module that holds its code now."""


def moved_to(name: str) -> str | None:
    """The module that the old path ``name`` names now (itself, or through a moved parent package), or ``None``.

    Example:
        >>> moved_to("anomalib_ea2d.torch_model")
        'anomalib_ea2d.models.image.ea2d.torch_model'
        >>> moved_to("anomalib_ea2d.components.attention")
        'anomalib_ea2d.models.image.ea2d.components.attention'
        >>> moved_to("anomalib_ea2d.models") is None
        True
    """
    if name in MOVED:
        return MOVED[name]
    parent = name.rpartition(".")[0]
    while parent:
        if parent in MOVED:
            return MOVED[parent] + name[len(parent) :]
        parent = parent.rpartition(".")[0]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the new module (already executed under its own name)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        del spec
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the new module ran when it was imported."""

    def get_code(self, fullname: str) -> CodeType | None:
        """The new module's code, for ``python -m <old path>`` (runpy runs it as ``__main__``)."""
        del fullname
        spec = importlib.util.find_spec(self.target)
        loader = spec.loader if spec is not None else None
        return loader.get_code(self.target) if isinstance(loader, importlib.abc.InspectLoader) else None

    def is_package(self, fullname: str) -> bool:
        """Whether the new module is a package."""
        del fullname
        spec = importlib.util.find_spec(self.target)
        return spec is not None and spec.submodule_search_locations is not None


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds the old paths of :data:`MOVED` (and the submodules of moved packages)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        del path, target
        new = moved_to(fullname)
        if new is None:
            return None
        found = importlib.util.find_spec(new)  # imports the new module's parents, not the module itself
        if found is None:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(new), origin=found.origin)
        spec.submodule_search_locations = found.submodule_search_locations
        spec.has_location = found.has_location
        return spec


def install() -> None:
    """Put the finder first in ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())


__all__ = ["MOVED", "install", "moved_to"]
