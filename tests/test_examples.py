"""The example integrations in ``examples/`` are what a team lead installs first, so each must be
a whole plugin: ``plugport check`` clean, a README that says in plain words what every
permission and credential is for, a safe icon, a current lock, an archive that packs without
its tests, and test files that pytest can collect side by side. (Their own tests, against the
local fakes of the services, are collected from ``examples/`` in the same run.)"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from plugport.authoring import pack_plugin
from plugport.checks import check_path
from plugport.deps.lockfile import load_lock
from plugport.manifest import load_manifest

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
OTHERS = {"plugport.theme-nord"}
"""Examples that are not integrations: a theme."""
DIRS = sorted(p.parent for p in ROOT.glob("*/plugport.toml"))
MAX_ICON_BYTES = 8 * 1024
_SVG = "{http://www.w3.org/2000/svg}"


def test_the_nine_integrations_are_there() -> None:
    assert {load_manifest(d).name for d in DIRS} == NINE | OTHERS
    integrations = {m.name for m in map(load_manifest, DIRS) if "integration" in m.categories}
    assert integrations == NINE


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
