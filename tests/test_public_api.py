"""The facade exports a deliberate, sorted list of names, and imports flow one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import plugport
import plugport.errors
import plugport.sdk

SRC = Path(plugport.__file__).parent


@pytest.mark.parametrize("module", [plugport, plugport.errors, plugport.sdk])
def test_all_is_sorted_and_complete(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert hasattr(module, name), name


def test_facade_exports_public_objects_only() -> None:
    exported = {n for n in dir(plugport) if not n.startswith("_")} - {
        # submodules, reachable as plugport.x but not part of the flat API
        "archive",
        "authoring",
        "errors",
        "index",
        "inspection",
        "manifest",
        "sdk",
        "signing",
        "versions",
        "cli",
        "scaffold",
        "runtime",
        "host",
        "registry",
        "cohost",
        "testing",
    }
    assert exported == set(plugport.__all__) - {"__version__"}


def test_every_error_is_drawn_in_the_tree() -> None:
    doc = plugport.errors.__doc__ or ""
    for name in plugport.errors.__all__:
        obj = getattr(plugport.errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert name in doc, f"{name} missing from the tree in errors.py's docstring"
            assert name.endswith("Error")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {m for m in found if m == "plugport" or m.startswith("plugport.")}


def _module_files(package: str) -> list[Path]:
    base = SRC / package
    return sorted(base.rglob("*.py")) if base.is_dir() else [SRC / f"{package}.py"]


# package -> plugport modules it must never import (ARCHITECTURE.md, "Imports point one way").
FORBIDDEN = {
    "errors": ("plugport.",),
    "versions": (
        "plugport.manifest",
        "plugport.archive",
        "plugport.signing",
        "plugport.runtime",
        "plugport.host",
        "plugport.registry",
        "plugport.cli",
        "plugport.sdk",
    ),
    "archive": (
        "plugport.manifest",
        "plugport.signing",
        "plugport.runtime",
        "plugport.host",
        "plugport.registry",
        "plugport.cli",
    ),
    "signing": (
        "plugport.manifest",
        "plugport.archive",
        "plugport.runtime",
        "plugport.host",
        "plugport.registry",
        "plugport.cli",
    ),
    "manifest": (
        "plugport.archive",
        "plugport.signing",
        "plugport.runtime",
        "plugport.host",
        "plugport.registry",
        "plugport.cli",
    ),
    "_manifest_fields": (
        "plugport.archive",
        "plugport.signing",
        "plugport.runtime",
        "plugport.host",
        "plugport.registry",
        "plugport.cli",
    ),
    "_manifest_errors": (
        "plugport.manifest",
        "plugport.runtime",
        "plugport.host",
        "plugport.registry",
        "plugport.cli",
    ),
    "index": ("plugport.runtime", "plugport.host", "plugport.registry", "plugport.cli"),
    "runtime": ("plugport.host", "plugport.registry", "plugport.cli"),
    "host": ("plugport.registry", "plugport.cli"),
    "registry": ("plugport.host", "plugport.runtime", "plugport.cli"),
    # The pages' shared core and the JSON error shape serve both the registry and the host.
    "_web": ("plugport.runtime", "plugport.host", "plugport.registry", "plugport.cli"),
    "_api_errors": ("plugport.runtime", "plugport.host", "plugport.registry", "plugport.cli"),
    "cohost": ("plugport.cli",),
    "_sqlite": ("plugport.",),
}
SDK_ALLOWED = ("plugport.errors", "plugport.manifest", "plugport.runtime.protocol", "plugport.sdk")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    for path in _module_files(package):
        for module in _imports(path):
            for banned in FORBIDDEN[package]:
                assert not module.startswith(banned), f"{path.name} imports {module}"


def test_sdk_imports_only_its_allowed_core() -> None:
    for path in _module_files("sdk"):
        for module in _imports(path):
            assert module.startswith(SDK_ALLOWED), f"{path} imports {module}"


def test_nothing_imports_the_cli() -> None:
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts or path.name == "__main__.py":
            continue
        assert not any(m.startswith("plugport.cli") for m in _imports(path)), path


def test_nothing_imports_the_testing_kit() -> None:
    # plugport.testing sits on top, beside the CLI: the runtime's fakes live in
    # runtime/capabilities/fakes so the capability records can list them without it.
    for path in SRC.rglob("*.py"):
        if "testing" in path.relative_to(SRC).parts:
            continue
        assert not any(m.startswith("plugport.testing") for m in _imports(path)), path
