"""Installing a plugin distributed as a wheel on a PEP 503/691 package index: a local index
(real HTTP on 127.0.0.1) of wheels built here, signed with ``plugport sign``'s format. The
plugin runs; its locked libraries come from the same index; every refusal names what is wrong
and leaves nothing installed (no state row, no code directory, no store entry, empty
staging)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.archive import sha256_file
from plugport.authoring import archive_facts
from plugport.deps.locker import IndexOptions, lock_plugin
from plugport.deps.lockfile import Lock, LockedPackage, LockedWheel
from plugport.errors import (
    DependencyError,
    InvalidInputError,
    NotFoundError,
    PluginValidationError,
    SignatureError,
)
from plugport.host import PluginHost
from plugport.index import IndexEntry, public_key_document, sign_index
from plugport.manifest import PythonDependencies
from plugport.runtime.hooks import HookSpec
from plugport.signing import ArchiveFacts, generate_private_key, key_id, public_key_pem, sign
from plugport.testing.pypi import LocalIndex, build_wheel, isolated_pip_env, wheel_from_installed

GREETER = """\
from plugport.sdk import Plugin, hook


class Hello(Plugin):
    @hook("greet")
    def greet(self, name):
        return "{label} says hello to " + name
"""

SHOUTER = """\
import tinyfmt

from plugport.sdk import Plugin, hook


class Hello(Plugin):
    @hook("greet")
    def greet(self, name):
        return tinyfmt.shout("hello " + name) + " from " + tinyfmt.__file__
"""


def manifest(name: str, version: str, entry: str, extra: str = "") -> str:
    return (
        f'name = "{name}"\nversion = "{version}"\nentry = "{entry}"\n'
        'description = "A plugin shipped as a wheel."\n'
        "[contributes]\nhooks = { greet = 0 }\n" + extra
    )


class Scene:
    """A package index directory served over HTTP, a publisher key, and a host home."""

    def __init__(self, tmp_path: Path, index: LocalIndex) -> None:
        self.tmp = tmp_path
        self.index = index
        self.files = index.directory
        self.key = generate_private_key()
        self.pub = tmp_path / "acme.pub"
        self.pub.write_text(public_key_pem(self.key.public_key()))
        self.home = tmp_path / "home"

    def wheel(
        self,
        version: str = "1.0.0",
        *,
        name: str = "acme.hello",
        project: str = "acme-hello",
        package: str = "acme_hello",
        entry_points: str | None = None,
        manifest_name: str | None = None,
        code: str = GREETER,
        extra: str = "",
        lock: str | None = None,
        tag: str = "py3-none-any",
        signed: bool = True,
    ) -> Path:
        entry = f"{package}.plugin:Hello"
        files = {
            f"{package}/__init__.py": "",
            f"{package}/plugin.py": code.replace("{label}", f"{name} {version}"),
            f"{package}/plugport.toml": manifest(manifest_name or name, version, entry, extra),
        }
        if lock is not None:
            files[f"{package}/plugport.lock"] = lock
        if entry_points is None:
            entry_points = f"[plugport.plugins]\n{name} = {entry}\n"
        path = build_wheel(self.files, project, version, files, entry_points=entry_points, tag=tag)
        if signed:
            self.sign(path, name=manifest_name or name, version=version)
        return path

    def sign(self, path: Path, key: Any = None, *, name: str = "", version: str = "") -> Path:
        """``path.sig``; ``name`` and ``version`` stand in for a wheel ``plugport sign``
        refuses (to test that the host refuses it too)."""
        if name:
            digest, length = sha256_file(path)
            facts = ArchiveFacts(name, version, digest, length)
        else:
            facts = archive_facts(path)
        signature = Path(f"{path}.sig")
        signature.write_bytes(sign(key or self.key, facts))
        return signature

    def url(self, path: Path) -> str:
        return self.index.files_url + path.name

    def host(self, **options: Any) -> PluginHost:
        return PluginHost(
            app="myapp",
            app_version="2.4.0",
            home=self.home,
            hookspecs=[HookSpec("greet", ("name",))],
            **options,
        )

    def install(self, *specs: str, host: dict[str, Any] | None = None, **options: Any) -> Any:
        """Install ``specs`` from the index; the report and what ``greet`` answers."""

        async def main() -> Any:
            async with self.host(**(host or {})) as h:
                report = await h.install(*specs, index_url=self.index.url, **options)
                answers = [o.value for o in await h.hooks.greet(name="Ada")]
                return report, answers, h.installed(), h.audit(limit=50)

        return asyncio.run(main())

    def refused(self, *specs: str, host: dict[str, Any] | None = None, **options: Any) -> Any:
        """Install ``specs``, which must fail; returns the error, after checking that nothing
        was installed and no file was left behind."""

        async def main() -> Any:
            async with self.host(**(host or {})) as h:
                try:
                    await h.install(*specs, index_url=self.index.url, **options)
                except Exception as exc:  # returned for the caller to check
                    assert h.installed() == []
                    return exc, h.audit(limit=50)
            raise AssertionError("the install went through")

        error, trail = asyncio.run(main())
        self.assert_nothing_left()
        return error, trail

    def assert_nothing_left(self) -> None:
        for folder in ("staging", "plugins", "wheels"):
            left = sorted(p.name for p in (self.home / folder).iterdir())
            assert left == [], f"{folder}: {left}"


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    (tmp_path / "index").mkdir()
    with LocalIndex(tmp_path / "index") as index:
        yield Scene(tmp_path, index)


def library(scene: Scene, version: str = "1.0") -> Path:
    return build_wheel(
        scene.files,
        "tinyfmt",
        version,
        {"tinyfmt/__init__.py": "def shout(x):\n    return x.upper() + '!'\n"},
    )


def lock_for(*wheels: tuple[str, str, Path | None, str | None]) -> str:
    """A ``plugport.lock`` for ``[python] dependencies = ["tinyfmt==1.0"]`` naming each
    ``(name, version, wheel file, sha256 override)``."""
    packages = []
    for name, version, path, sha in wheels:
        assert path is not None
        data = path.read_bytes()
        digest = sha or hashlib.sha256(data).hexdigest()
        packages.append(LockedPackage(name, version, (LockedWheel(path.name, digest, len(data)),)))
    return Lock.for_inputs(PythonDependencies(dependencies=["tinyfmt==1.0"]), packages).dumps()


PYTHON = '[python]\ndependencies = ["tinyfmt==1.0"]\n'


# --- installs -----------------------------------------------------------------------------


@pytest.mark.parametrize("pep691", [True, False], ids=["json", "html"])
def test_a_signed_wheel_installs_and_runs(scene: Scene, pep691: bool) -> None:
    scene.index.json = pep691
    wheel = scene.wheel()
    report, answers, [row], _ = scene.install("acme.hello==1.0.0", key=scene.pub)
    assert report.installed == [("acme.hello", "1.0.0", None)]
    assert report.unsigned == []
    assert answers == ["acme.hello 1.0.0 says hello to Ada"]
    assert (row.source_kind, row.source) == ("index", scene.url(wheel))
    assert row.key_id == key_id(scene.key.public_key())
    assert row.sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    code = scene.home / "plugins" / "acme.hello" / f"1.0.0-{row.sha256[:12]}"
    assert sorted(p.name for p in code.iterdir()) == ["acme_hello", "plugport.toml"]
    assert not (code / "acme_hello" / "plugport.toml").exists()  # moved to the root
    assert scene.index.requests[0] == "/simple/acme-hello/"  # the PEP 503 normalised name
    assert f"/files/{wheel.name}.sig" in scene.index.requests


def test_the_highest_version_this_python_runs_unless_yanked(scene: Scene) -> None:
    scene.wheel("1.0.0")
    scene.wheel("1.1.0")
    scene.wheel("1.2.0")
    scene.wheel("2.0.0", tag="cp27-cp27mu-manylinux1_x86_64")  # not for this interpreter
    scene.index.yanked["acme_hello-1.2.0-py3-none-any.whl"] = "broken greeting"
    report, answers, _, _ = scene.install("acme.hello", key=scene.pub)
    assert report.installed == [("acme.hello", "1.1.0", None)]
    assert answers == ["acme.hello 1.1.0 says hello to Ada"]
    # pinned with ==, a yanked version is installed (PEP 592)
    report, answers, _, _ = scene.install("acme.hello==1.2.0", key=scene.pub)
    assert report.installed == [("acme.hello", "1.2.0", "1.1.0")]
    # the project name works as well as the plugin name
    report, _, _, _ = scene.install("acme-hello<1.1", key=scene.pub)
    assert report.installed == [("acme.hello", "1.0.0", "1.2.0")]


def test_a_locked_library_comes_from_the_same_index(scene: Scene) -> None:
    tinyfmt = library(scene)
    scene.wheel(code=SHOUTER, extra=PYTHON, lock=lock_for(("tinyfmt", "1.0", tinyfmt, None)))
    report, [answer], _, _ = scene.install("acme.hello", key=scene.pub)
    assert report.installed == [("acme.hello", "1.0.0", None)]
    shouted, _, where = answer.partition(" from ")
    assert shouted == "HELLO ADA!"
    digest = hashlib.sha256(tinyfmt.read_bytes()).hexdigest()
    assert where.startswith(str(scene.home / "wheels" / digest))  # the store, not the index
    assert f"/files/{tinyfmt.name}" in scene.index.requests
    assert not (scene.home / "staging").exists() or not any((scene.home / "staging").iterdir())


MARKDOWN_GREETER = """\
import markdown

from plugport.sdk import Plugin, hook


class Hello(Plugin):
    @hook("greet")
    def greet(self, name):
        return markdown.markdown("**" + name + "**")
"""


def test_a_plugin_locked_by_its_author_with_plugport_lock(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The author's flow: the manifest in the package, ``plugport lock`` against the index
    (pip, confined to it), the wheel built with both inside, signed."""
    isolated_pip_env(monkeypatch, tmp_path / "wheel-cache")
    wheel_from_installed("markdown", scene.files)
    package = tmp_path / "src" / "acme_md"
    package.mkdir(parents=True)
    text = manifest(
        "acme.md", "1.0.0", "acme_md.plugin:Hello", '[python]\ndependencies = ["markdown"]\n'
    )
    (package / "plugport.toml").write_text(text)
    lock_plugin(package, index=IndexOptions(index_url=scene.index.url))
    files = {
        "acme_md/__init__.py": "",
        "acme_md/plugin.py": MARKDOWN_GREETER,
        "acme_md/plugport.toml": text,
        "acme_md/plugport.lock": (package / "plugport.lock").read_text(),
    }
    entry_points = "[plugport.plugins]\nacme.md = acme_md.plugin:Hello\n"
    wheel = build_wheel(scene.files, "acme-md", "1.0.0", files, entry_points=entry_points)
    scene.sign(wheel)
    report, answers, _, _ = scene.install("acme.md", key=scene.pub)
    assert report.installed == [("acme.md", "1.0.0", None)]
    assert answers == ["<p><strong>Ada</strong></p>"]


def test_the_operator_policy_allows_unsigned_wheels_and_it_is_audited(scene: Scene) -> None:
    wheel = scene.wheel(signed=False)
    report, answers, [row], trail = scene.install("acme.hello", host={"allow_unsigned_index": True})
    assert report.installed == [("acme.hello", "1.0.0", None)]
    assert report.unsigned == ["acme.hello"]
    assert answers == ["acme.hello 1.0.0 says hello to Ada"]
    assert (row.source_kind, row.source, row.key_id) == ("index", scene.url(wheel), "")
    [event] = [e for e in trail if e.action == "install-unsigned"]
    assert (event.subject, event.outcome) == ("acme.hello", "ok")
    assert event.detail["url"] == scene.url(wheel)
    assert "allow_unsigned_index" in event.detail["reason"]


def test_a_registry_signed_index_can_vouch_for_an_unsigned_wheel(scene: Scene) -> None:
    wheel = scene.wheel(signed=False)
    registry_key = generate_private_key()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    publisher = key_id(scene.key.public_key())
    entry = IndexEntry("acme.hello", "1.0.0", digest, wheel.stat().st_size, publisher, False)
    document = sign_index(registry_key, [entry], version=1, now=datetime.now(UTC))

    def registry(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/keys":
            return httpx.Response(200, json=public_key_document(registry_key))
        if request.url.path == "/api/v1/index":
            return httpx.Response(200, content=document)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})

    options = {
        "registries": ["https://registry.example.com"],
        "transport": httpx.MockTransport(registry),
    }
    report, _, [row], trail = scene.install("acme.hello", host=options)
    assert report.installed == [("acme.hello", "1.0.0", None)]
    assert report.unsigned == []
    assert row.key_id == publisher
    assert not [e for e in trail if e.action == "install-unsigned"]


def test_update_of_an_index_install_says_how(scene: Scene) -> None:
    scene.wheel()
    scene.install("acme.hello", key=scene.pub)

    async def update() -> Exception:
        async with scene.host() as h:
            with pytest.raises(InvalidInputError) as caught:
                await h.update("acme.hello")
            return caught.value

    error = asyncio.run(update())
    assert "installed from the package index file" in str(error)
    assert "plugport install --index-url INDEX_URL acme.hello" in str(error)


# --- refusals -------------------------------------------------------------------------------


def test_no_signature_and_no_policy_is_refused(scene: Scene) -> None:
    wheel = scene.wheel(signed=False)
    error, trail = scene.refused("acme.hello")
    assert isinstance(error, SignatureError)
    assert f"{scene.url(wheel)}.sig does not exist" in str(error)
    assert "allow_unsigned_index = true" in str(error)
    assert any(e.action == "verify" and e.outcome == "refused" for e in trail)
    # --key with nothing to verify is refused too, even where the policy would allow unsigned
    error, _ = scene.refused("acme.hello", key=scene.pub, host={"allow_unsigned_index": True})
    assert isinstance(error, SignatureError)
    assert "no signature beside the wheel" in str(error)


def test_a_bad_signature_is_refused_even_when_unsigned_is_allowed(scene: Scene) -> None:
    wheel = scene.wheel()
    scene.sign(wheel, generate_private_key())  # someone else's key
    error, _ = scene.refused("acme.hello", key=scene.pub, host={"allow_unsigned_index": True})
    assert isinstance(error, SignatureError)
    assert "signed by" in str(error)
    # and a signature over other bytes
    other = scene.wheel("1.0.1")
    Path(f"{wheel}.sig").write_bytes(Path(f"{other}.sig").read_bytes())
    error, _ = scene.refused("acme.hello==1.0.0", key=scene.pub)
    assert isinstance(error, SignatureError)


def test_a_file_unlike_the_index_sha256_is_refused(scene: Scene) -> None:
    wheel = scene.wheel()
    scene.index.hashes[wheel.name] = "0" * 64
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, SignatureError)
    assert "the package index lists" in str(error)
    assert wheel.name in str(error)


@pytest.mark.parametrize(
    ("entry_points", "expected"),
    [
        ("", "has no acme_hello-1.0.0.dist-info/entry_points.txt"),
        ("[console_scripts]\nhello = acme_hello.plugin:main\n", "no [plugport.plugins] entry"),
        (
            "[plugport.plugins]\nacme.hello = acme_hello.plugin:Hello\n"
            "acme.other = acme_hello.plugin:Other\n",
            "2 [plugport.plugins] entry points",
        ),
        ("[plugport.plugins]\nacme.hello = acme_hello.plugin\n", "is not module:Class"),
    ],
    ids=["no-entry-points", "no-group", "two-entries", "not-a-class"],
)
def test_a_wheel_without_exactly_one_plugin_entry_is_refused(
    scene: Scene, entry_points: str, expected: str
) -> None:
    scene.wheel(entry_points=entry_points)
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, PluginValidationError)
    assert expected in str(error)


def test_a_manifest_unlike_its_entry_point_is_refused(scene: Scene) -> None:
    scene.wheel(manifest_name="acme.other")
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, PluginValidationError)
    assert "'acme.other'" in str(error)
    assert "'acme.hello'" in str(error)


def test_a_wheel_of_another_plugin_than_asked_is_refused(scene: Scene) -> None:
    scene.wheel(name="acme.hello", project="acme-other", package="acme_other")
    error, _ = scene.refused("acme.other", key=scene.pub)
    assert isinstance(error, InvalidInputError)
    assert "is the plugin acme.hello, not acme.other" in str(error)


def test_no_wheel_this_python_runs_is_refused(scene: Scene) -> None:
    scene.wheel(tag="cp27-cp27mu-manylinux1_x86_64")
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, NotFoundError)
    assert "acme_hello-1.0.0-cp27-cp27mu-manylinux1_x86_64.whl has no tag this Python runs" in (
        str(error)
    )
    assert "this Python's most specific tag is" in str(error)


def test_a_version_not_on_the_index_lists_what_is(scene: Scene) -> None:
    scene.wheel("1.0.0")
    scene.wheel("1.1.0")
    error, _ = scene.refused("acme.hello==3.0", key=scene.pub)
    assert isinstance(error, NotFoundError)
    assert "has 1.1.0, 1.0.0" in str(error)
    error, _ = scene.refused("acme.nothing", key=scene.pub)
    assert isinstance(error, NotFoundError)
    assert "no page" in str(error)


def test_only_yanked_versions_are_refused_unless_pinned(scene: Scene) -> None:
    wheel = scene.wheel("1.0.0")
    scene.index.yanked[wheel.name] = "do not use"
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, NotFoundError)
    assert "yanked (do not use): pin it with ==1.0.0" in str(error)


def test_a_locked_library_the_index_lacks_is_refused(scene: Scene) -> None:
    elsewhere = library(scene)
    lock = lock_for(("tinyfmt", "1.0", elsewhere, None))
    elsewhere.rename(scene.tmp / elsewhere.name)  # not on the index any more
    scene.wheel(code=SHOUTER, extra=PYTHON, lock=lock)
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, DependencyError)
    assert "tinyfmt-1.0-py3-none-any.whl" in str(error)
    assert "is not on the package index" in str(error)


def test_a_locked_library_with_another_hash_is_refused(scene: Scene) -> None:
    tinyfmt = library(scene)
    scene.wheel(code=SHOUTER, extra=PYTHON, lock=lock_for(("tinyfmt", "1.0", tinyfmt, "ab" * 32)))
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, DependencyError)
    assert "tinyfmt-1.0-py3-none-any.whl" in str(error)
    assert "abababababababab" in str(error)
    # the index does not give a hash: the download itself is checked against the lock
    scene.index.hashes[tinyfmt.name] = "not a sha256"
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, DependencyError)
    assert "nothing was installed" in str(error)


def test_plain_http_is_refused_except_to_this_machine(scene: Scene, tmp_path: Path) -> None:
    async def main(url: str) -> Exception:
        async with scene.host() as h:
            with pytest.raises(InvalidInputError) as caught:
                await h.install("acme.hello", index_url=url)
            return caught.value

    error = asyncio.run(main("http://pypi.example.com/simple/"))
    assert "only https" in str(error)
    assert "'http://pypi.example.com/simple/'" in str(error)
    scene.assert_nothing_left()
    # a page on this machine that links a file on another host over http
    wheel = scene.wheel()
    scene.index.links[wheel.name] = f"http://files.example.com/{wheel.name}"
    error, _ = scene.refused("acme.hello", key=scene.pub)
    assert isinstance(error, InvalidInputError)
    assert f"http://files.example.com/{wheel.name}" in str(error)


def test_a_registry_listing_other_bytes_does_not_vouch(scene: Scene) -> None:
    """A registry that lists the same version with another sha256 (its ``.plugport``, say)
    vouches for those bytes, not for the wheel: no signature, so the operator's policy
    decides."""
    wheel = scene.wheel(signed=False)
    registry_key = generate_private_key()
    entry = IndexEntry("acme.hello", "1.0.0", "ab" * 32, wheel.stat().st_size, "cd" * 32, False)
    document = sign_index(registry_key, [entry], version=1, now=datetime.now(UTC))

    def registry(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/keys":
            return httpx.Response(200, json=public_key_document(registry_key))
        return httpx.Response(200, content=document)

    options: dict[str, Any] = {
        "registries": ["https://registry.example.com"],
        "transport": httpx.MockTransport(registry),
    }
    error, _ = scene.refused("acme.hello", host=options)
    assert isinstance(error, SignatureError)
    assert "https://registry.example.com lists acme.hello 1.0.0 with another sha256" in str(error)
    report, _, [row], _ = scene.install("acme.hello", host=options | {"allow_unsigned_index": True})
    assert report.unsigned == ["acme.hello"]
    assert row.key_id == ""


def test_offline_is_refused_before_any_request(scene: Scene) -> None:
    scene.wheel()
    error, _ = scene.refused("acme.hello", key=scene.pub, host={"offline": True})
    assert isinstance(error, InvalidInputError)
    assert "needs the network; drop --offline" in str(error)
    assert scene.index.requests == []
