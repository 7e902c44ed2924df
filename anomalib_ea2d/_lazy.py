"""Lazy attribute exports for packages whose import must stay light (no torch at import time)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__``/``__dir__`` that import ``exports[name]`` on first access of ``name``.

    Args:
        package: Name of the package that exports the attributes.
        exports: Attribute name -> module that defines it.

    Example:
        >>> getattr_, dir_ = lazy_exports("json", {"dumps": "json"})
        >>> getattr_("dumps")({"a": 1})
        '{"a": 1}'
    """

    def __getattr__(name: str) -> Any:  # noqa: ANN401, N807
        if name not in exports:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
