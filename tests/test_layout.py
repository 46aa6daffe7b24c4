"""The house rule: task families import the shared packages, never each other.

Each check imports a package's modules in a fresh interpreter and lists every hrmkit module
that came with them, so an import hidden inside a shared helper is caught too.
"""

import json
import subprocess
import sys

import pytest

FAMILIES = ("hrmkit.puzzles", "hrmkit.lm", "hrmkit.code")
SHARED_TOP = {"hrmkit", "hrmkit.config", "hrmkit.config_base", "hrmkit.files", "hrmkit.progress"}
SHARED_PACKAGES = ("hrmkit.model", "hrmkit.train", "hrmkit.viz")

_LOADED = """
import importlib, json, pkgutil, sys
names = []
for root in sys.argv[1:]:
    package = importlib.import_module(root)
    names.append(root)
    if hasattr(package, "__path__") and root != "hrmkit":  # the top package alone: its walk is everything
        names += [info.name for info in pkgutil.walk_packages(package.__path__, root + ".")]
for name in names:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m == "hrmkit" or m.startswith("hrmkit."))))
"""


def loaded_with(*roots: str) -> set[str]:
    """Every hrmkit module loaded by importing ``roots`` and all their submodules in a new interpreter."""
    out = subprocess.run([sys.executable, "-c", _LOADED, *roots], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def family_of(module: str) -> str | None:
    return next((family for family in FAMILIES if module == family or module.startswith(family + ".")), None)


def outside(modules: set[str], allowed_families: tuple[str, ...]) -> list[str]:
    """Modules that are neither shared nor in an allowed family."""
    def shared(module: str) -> bool:
        return module in SHARED_TOP or any(module == p or module.startswith(p + ".") for p in SHARED_PACKAGES)
    return sorted(m for m in modules if not shared(m) and family_of(m) not in allowed_families)


@pytest.mark.parametrize("family, may_use", [
    ("hrmkit.puzzles", ()),
    ("hrmkit.lm", ()),
    ("hrmkit.code", ("hrmkit.lm",)),  # code samples from an HRM-LM and trains on its corpus format
])
def test_a_family_imports_shared_packages_and_no_other_family(family, may_use):
    assert outside(loaded_with(family), (family, *may_use)) == []


def test_the_model_imports_nothing_of_hrmkit_but_its_config():
    modules = loaded_with("hrmkit.model")
    assert sorted(m for m in modules if not m.startswith("hrmkit.model")) == ["hrmkit", "hrmkit.config",
                                                                              "hrmkit.config_base", "hrmkit.files"]


def test_the_trainer_and_the_shared_packages_import_no_family():
    assert outside(loaded_with(*SHARED_PACKAGES, *sorted(SHARED_TOP)), ()) == []


def test_the_shared_file_helpers_import_nothing_of_hrmkit():
    assert loaded_with("hrmkit.files") == {"hrmkit", "hrmkit.files"}
