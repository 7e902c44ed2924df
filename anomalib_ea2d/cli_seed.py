"""``--seed_everything N`` applied to EA2D runs of the ``anomalib`` command.

anomalib's CLI declares ``--seed_everything`` ("an int to run seed_everything with this value before
classes instantiation") but never calls it, so two ``anomalib train --seed_everything 0`` runs of
EA2D trained different models, and a later ``anomalib test --seed_everything 0`` drew another
validation/test split than training did (images the thresholds were set on ended up in the test
set). :func:`seed_ea2d_runs` makes the CLI seed before it builds the classes when the model is EA2D
(other models run as anomalib runs them); Lightning logs ``Seed set to N``.

The start-up hook (:mod:`anomalib_ea2d._hook`) applies it when ``anomalib.cli.cli`` is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

from lightning.pytorch import seed_everything

from anomalib_ea2d._hook import before_instantiate_classes


def _model_class(class_path: object) -> type | None:
    """The class named by a parsed ``class_path`` (``"module.Class"``), or ``None`` where it cannot be imported."""
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def requested_seed(config: Any, subcommand: str | None) -> int | None:  # noqa: ANN401 - jsonargparse Namespace
    """The integer ``seed_everything`` of an EA2D run in ``config``, else ``None`` (``True``: anomalib's default).

    Example:
        >>> from jsonargparse import Namespace
        >>> config = Namespace(seed_everything=0, model=Namespace(class_path="anomalib_ea2d.EA2D"))
        >>> requested_seed(config, None)
        0
        >>> requested_seed(Namespace(seed_everything=True, model=config.model), None)
        >>> requested_seed(Namespace(seed_everything=0, model=Namespace(class_path="anomalib.models.Padim")), None)
    """
    from anomalib_ea2d.models.image.ea2d.lightning_model import EA2D  # noqa: PLC0415 - torch-heavy

    section = config.get(subcommand, config) if subcommand else config
    seed = section.get("seed_everything")
    if isinstance(seed, bool) or not isinstance(seed, int):
        return None
    model = section.get("model")
    model_class = _model_class(model.get("class_path") if hasattr(model, "get") else None)
    return seed if model_class is not None and issubclass(model_class, EA2D) else None


def seed_ea2d_runs(cli_class: type) -> None:
    """Make ``cli_class`` (anomalib's ``AnomalibCLI``) seed EA2D runs with ``--seed_everything N`` before building them.

    Example:
        >>> import torch
        >>> from jsonargparse import Namespace
        >>> run = Namespace(seed_everything=5, model=Namespace(class_path="anomalib_ea2d.EA2D"))
        >>> class FakeCLI:
        ...     config = Namespace(subcommand="train", train=run)
        ...     def instantiate_classes(self) -> None:
        ...         self.drawn = torch.rand(1).item()
        >>> seed_ea2d_runs(FakeCLI)
        >>> first, second = FakeCLI(), FakeCLI()
        >>> first.instantiate_classes(); second.instantiate_classes()
        >>> first.drawn == second.drawn
        True
    """
    before_instantiate_classes(cli_class, "seeds_ea2d", _seed_if_asked)


def _seed_if_asked(cli: Any) -> None:  # noqa: ANN401 - the CLI
    """Seed everything with the CLI's ``seed_everything`` if it is an integer and the model EA2D."""
    config = getattr(cli, "config", None)
    if config is not None:
        seed = requested_seed(config, config.get("subcommand"))
        if seed is not None:
            seed_everything(seed)


__all__ = ["requested_seed", "seed_ea2d_runs"]
