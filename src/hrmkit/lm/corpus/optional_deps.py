"""Imports of the optional `lm` extra (pyarrow, zstandard), made only when a file needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install 'hrmkit[lm]'"


class MissingDependency(ImportError):
    """An optional package is not installed; the message says which and how to get it."""


def require(module_name: str, purpose: str) -> ModuleType:
    """Import `module_name` or raise MissingDependency naming `purpose` and the install command."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        package = module_name.split(".")[0]
        raise MissingDependency(f"{purpose} needs the '{package}' package: {INSTALL_HINT}") from None


def pyarrow() -> ModuleType:
    return require("pyarrow", "reading parquet or arrow files")


def pyarrow_parquet() -> ModuleType:
    return require("pyarrow.parquet", "reading parquet files")


def zstandard() -> ModuleType:
    return require("zstandard", "reading or writing .zst files")
