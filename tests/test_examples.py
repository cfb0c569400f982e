"""The example plugins in ``examples/`` are what a team lead installs first and what authors
copy, so each must be a whole plugin: ``plugport check`` clean, a README that says in plain
words what every permission and credential is for, a safe icon, a current lock, an archive that
packs without its tests, and test files that pytest can collect side by side. The UI examples
also need the host that renders them, answer every surface they contribute, and keep snapshot
files that are trees the host accepts and that a test reads. (Their own tests, against local
fakes of the services, are collected from ``examples/`` in the same run.)"""

from __future__ import annotations

import importlib
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from plugport.authoring import pack_plugin
from plugport.checks import check_path
from plugport.components import check_tree
from plugport.deps.lockfile import load_lock
from plugport.manifest import load_manifest
from plugport.sdk import handlers_of

ROOT = Path(__file__).resolve().parent.parent / "examples"
NINE = {
    "plugport.slack",
    "plugport.teams",
    "plugport.discord",
    "plugport.jira",
    "plugport.linear",
    "plugport.github",
    "plugport.gitlab",
    "plugport.email",
    "plugport.sentry",
}
UI_EXAMPLES = {
    "plugport.theme-nord",
    "plugport.metrics-widget",
    "plugport.release-notes",
    "plugport.task-inspector",
    "plugport.cron-field",
}
"""Plugins that show what the UI surfaces are for (issue 20): a widget, a page, menu items,
a form field type and a theme."""
DIRS = sorted(p.parent for p in ROOT.glob("*/plugport.toml"))
UI_DIRS = [d for d in DIRS if load_manifest(d).name in UI_EXAMPLES]
SURFACE_DIRS = [d for d in UI_DIRS if load_manifest(d).contributes.ui_surfaces()]
"""The UI examples answered by handlers (a theme is data only)."""
MAX_ICON_BYTES = 8 * 1024
_SVG = "{http://www.w3.org/2000/svg}"


def test_the_nine_integrations_and_the_ui_examples_are_there() -> None:
    assert {load_manifest(d).name for d in DIRS} == NINE | UI_EXAMPLES
    assert len(UI_DIRS) == len(UI_EXAMPLES)


def test_test_files_have_distinct_names() -> None:
    """pytest imports each example's tests as top-level modules: a clash would break both."""
    names = [p.name for p in ROOT.glob("*/tests/test_*.py")]
    assert len(names) == len(set(names)), names
    packages = [load_manifest(d).entry.split(".", 1)[0] for d in DIRS]
    assert len(packages) == len(set(packages)), packages


@pytest.mark.parametrize("example", DIRS, ids=lambda p: p.name)
def test_check_passes_without_warnings(example: Path) -> None:
    report = check_path(example)
    assert report.passed, [str(i) for i in report.errors]
    assert report.warnings == [], [str(i) for i in report.warnings]


@pytest.mark.parametrize("example", DIRS, ids=lambda p: p.name)
def test_the_readme_explains_every_permission_and_credential(example: Path) -> None:
    manifest = load_manifest(example)
    readme = (example / "README.md").read_text()
    assert re.search(r"^## Permissions", readme, re.MULTILINE), "no '## Permissions' section"
    permissions = manifest.permissions
    named = [*manifest.credentials, *permissions.network, *manifest.webhooks]
    named += [*permissions.events.publish, *permissions.events.subscribe]
    named += [*permissions.tasks.submit, *manifest.tasks]
    named += [f'"{surface}"' for surface in permissions.ui]  # as in ui = ["widgets"]
    for name in named:
        assert name in readme, f"README.md does not mention {name!r}"
    for credential in manifest.credentials:
        command = f"plugport secret set {manifest.name} {credential}"
        if manifest.credentials[credential].kind != "oauth2":
            assert command in readme, f"README.md does not show `{command}`"


@pytest.mark.parametrize("example", DIRS, ids=lambda p: p.name)
def test_the_icon_is_a_small_safe_svg(example: Path) -> None:
    manifest = load_manifest(example)
    assert manifest.icon is not None
    icon = example / manifest.icon
    data = icon.read_bytes()
    assert icon.suffix == ".svg"
    assert len(data) <= MAX_ICON_BYTES
    root = ET.fromstring(data)  # noqa: S314 - our own files, checked for what a sanitiser drops
    assert root.tag == f"{_SVG}svg"
    for element in root.iter():
        tag = element.tag.removeprefix(_SVG)
        assert tag not in {"script", "foreignObject", "image", "iframe", "use"}, tag
        for attribute, value in element.attrib.items():
            assert not attribute.lower().startswith("on"), attribute
            assert "javascript:" not in value.lower()
            assert "url(http" not in value.lower()
            assert not (attribute.endswith("href") and not value.startswith("#")), value


@pytest.mark.parametrize("example", DIRS, ids=lambda p: p.name)
def test_the_lock_is_current_and_the_archive_leaves_the_tests_out(
    example: Path, tmp_path: Path
) -> None:
    manifest = load_manifest(example)
    lock = load_lock(example)
    assert lock is not None, "no plugport.lock: run plugport lock"
    assert list(lock.stale_reasons(manifest)) == []
    archive = pack_plugin(example, tmp_path).result.path
    with zipfile.ZipFile(archive) as packed:
        names = packed.namelist()
    assert "plugport.toml" in names
    assert "README.md" in names
    assert manifest.icon in names
    assert not any(n.startswith(("tests/", "conftest.py")) for n in names), names


@pytest.mark.parametrize("example", UI_DIRS, ids=lambda p: p.name)
def test_a_ui_example_needs_a_host_that_renders_it(example: Path) -> None:
    manifest = load_manifest(example)
    assert "ui" in manifest.categories
    assert manifest.supports("plugport", "0.4.0"), manifest.engines
    assert not manifest.supports("plugport", "0.3.9"), manifest.engines


@pytest.mark.parametrize("example", SURFACE_DIRS, ids=lambda p: p.name)
def test_a_ui_example_answers_every_surface_it_contributes(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest's widgets, pages, menu items and field types each have their handler (the
    host would find out only when a user opens one)."""
    manifest = load_manifest(example)
    module, _, name = manifest.entry.partition(":")
    monkeypatch.syspath_prepend(str(example))
    plugin = getattr(importlib.import_module(module), name)
    answered = sorted(h.name for _, h in handlers_of(plugin) if h.kind == "ui")
    assert answered == sorted(s.id for s in manifest.contributes.ui_surfaces())


@pytest.mark.parametrize("example", SURFACE_DIRS, ids=lambda p: p.name)
def test_a_ui_example_s_snapshots_are_trees_its_tests_read(example: Path) -> None:
    snapshots = sorted((example / "tests" / "snapshots").glob("*.json"))
    assert snapshots, "no tests/snapshots/*.json"
    tests = "\n".join(p.read_text() for p in (example / "tests").glob("test_*.py"))
    for path in snapshots:
        check_tree(json.loads(path.read_text()), surface=path.name, overlay_allowed=True)
        assert f'"{path.stem}"' in tests, f"{path.name} is compared by no test: remove it"
