"""Where the project's YAML configs are: inside the installed package, or the source checkout's ``configs/``.

The repository's ``configs/`` folder is the only copy that is edited. A wheel carries it as
``anomalib_ea2d/configs/`` (the build hook in ``hatch_build.py`` puts it there); an editable install
or a plain checkout has no such folder and reads ``configs/`` beside the package. Both layouts keep
the sub-folders, so a recipe's data section (``data: data/oct2017.yaml``) and a benchmark preset's
included thresholds file resolve relative to the file that names them, as anomalib's CLI resolves them.

From the command line, ``python -m anomalib_ea2d.config_files [NAME]`` prints the folder, or the
path of one config, e.g. for ``anomalib train --config "$(python -m anomalib_ea2d.config_files oct2017)"``.

Example:
    >>> bundled_config("synthetic_brain").name
    'synthetic_brain.yaml'
    >>> bundled_config("benchmark/smoke.yaml").parent.name
    'benchmark'
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
PACKAGED_DIR = _PACKAGE / "configs"
"""The configs inside an installed wheel."""
CHECKOUT_DIR = _PACKAGE.parent / "configs"
"""The configs of a source checkout (editable install, or the repository on ``PYTHONPATH``)."""
_SUFFIXES = (".yaml", ".yml")


def config_dir() -> Path:
    """The folder of the bundled configs.

    The installed package's copy when there is one, else the checkout's ``configs/`` (recognised by
    the ``pyproject.toml`` beside it, so an unrelated top-level ``configs`` folder in site-packages is
    never taken). If neither exists, the packaged location is returned and :func:`bundled_config`
    reports what is missing.
    """
    if PACKAGED_DIR.is_dir():
        return PACKAGED_DIR
    if CHECKOUT_DIR.is_dir() and (CHECKOUT_DIR.parent / "pyproject.toml").is_file():
        return CHECKOUT_DIR
    return PACKAGED_DIR


def available_configs(subfolder: str = "") -> list[str]:
    """Names of the bundled YAML files directly in ``subfolder`` of :func:`config_dir` (``""``: the top level)."""
    folder = config_dir() / subfolder
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if path.suffix in _SUFFIXES)


def _relative(name: str | Path) -> Path:
    """``name`` as a path relative to the configs folder, with ``.yaml`` added when it has no YAML suffix."""
    relative = Path(name)
    return relative if relative.suffix in _SUFFIXES else relative.with_name(f"{relative.name}.yaml")


def _fix(relative: Path) -> str:
    """The second half of a not-found message: what to pass instead."""
    folder = config_dir()
    if not folder.is_dir():
        return (
            f"the configs folder {folder} is missing: reinstall anomalib-ea2d from a wheel built with its "
            "configs, run from a source checkout, or pass the path of a YAML file"
        )
    subfolder = "" if relative.is_absolute() or relative.parent == Path() else relative.parent.as_posix()
    names = ", ".join(f"{subfolder}/{n}" if subfolder else n for n in available_configs(subfolder)) or "none"
    return f"pass one of the bundled configs in {folder} ({names}) or the path of a YAML file"


def bundled_config(name: str | Path) -> Path:
    """The bundled config ``name``, a path relative to the configs folder; ``.yaml`` may be left out.

    Args:
        name: E.g. ``"synthetic_brain"``, ``"oct2017.yaml"``, ``"data/oct2017.yaml"`` or ``"benchmark/smoke"``.

    Raises:
        FileNotFoundError: No such bundled config; the message lists those of the same folder.
    """
    relative = _relative(name)
    path = config_dir() / relative
    if not path.is_file():
        msg = f"Bundled config {str(name)!r} not found; {_fix(relative)}."
        raise FileNotFoundError(msg)
    return path


def find_config(name_or_path: str | Path) -> Path:
    """An existing file at ``name_or_path``, else the bundled config of that name.

    Raises:
        FileNotFoundError: Neither exists; the message names the input and the bundled choices.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    relative = _relative(name_or_path)
    if (config_dir() / relative).is_file():
        return config_dir() / relative
    msg = f"Config {str(name_or_path)!r} is neither a file nor a bundled config; {_fix(relative)}."
    raise FileNotFoundError(msg)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the configs folder, or the path of each config named in ``argv``; returns the exit status."""
    names = list(sys.argv[1:] if argv is None else argv)
    if not names:
        print(config_dir())
        return 0
    try:
        paths = [bundled_config(name) for name in names]
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    print("\n".join(str(path) for path in paths))
    return 0


__all__ = ["CHECKOUT_DIR", "PACKAGED_DIR", "available_configs", "bundled_config", "config_dir", "find_config"]

if __name__ == "__main__":
    sys.exit(main())
