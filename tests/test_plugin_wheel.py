"""A plugin wheel: its one ``plugport.plugins`` entry point leads to its manifest, which must
agree with it and with the wheel's version; signing and verifying bind the wheel file as they
bind a ``.plugport``; unpacking lays it out as a host runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugport import plugin_wheel
from plugport.authoring import archive_facts, read_archive_manifest, sign_archive, verify_archive
from plugport.errors import ArchiveError, PluginValidationError, SignatureError
from plugport.signing import generate_private_key, write_keypair
from plugport.testing.pypi import build_wheel
from tests.conftest import RunCli

ENTRY = "[plugport.plugins]\nacme.hello = acme_hello.plugin:Hello\n"
MANIFEST = (
    'name = "acme.hello"\nversion = "1.0.0"\nentry = "acme_hello.plugin:Hello"\n'
    'description = "A plugin shipped as a wheel."\n'
)
CODE = "from plugport.sdk import Plugin\n\n\nclass Hello(Plugin):\n    pass\n"


def wheel(
    dest: Path,
    *,
    entry_points: str = ENTRY,
    manifest: str = MANIFEST,
    version: str = "1.0.0",
    extra: dict[str, str] | None = None,
) -> Path:
    files = {
        "acme_hello/__init__.py": "",
        "acme_hello/plugin.py": CODE,
        "acme_hello/plugport.toml": manifest,
        **(extra or {}),
    }
    return build_wheel(dest, "acme-hello", version, files, entry_points=entry_points)


def problems(path: Path) -> str:
    with pytest.raises(PluginValidationError) as caught:
        plugin_wheel.read_plugin_wheel(path)
    return str(caught.value)


# --- the entry point ------------------------------------------------------------------------


def test_the_one_entry_of_the_group() -> None:
    text = (
        "[console_scripts]\nhello = acme_hello.cli:main\n\n"
        "# a comment\n[plugport.plugins]\n  acme.hello =  acme_hello.plugin:Hello \n"
    )
    entry = plugin_wheel.plugin_entry(text, where="x")
    assert (entry.name, entry.value) == ("acme.hello", "acme_hello.plugin:Hello")
    assert (entry.module, entry.package) == ("acme_hello.plugin", "acme_hello")
    assert entry.manifest_member == "acme_hello/plugport.toml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no [plugport.plugins] entry point"),
        ("[plugport.plugins]\n", "no [plugport.plugins] entry point"),
        ("[plugport.plugins]\na.b = m:A\nc.d = m:B\n", "2 [plugport.plugins] entry points"),
        ("[plugport.plugins]\na.b = m:A\na.b = m:A\n", "2 [plugport.plugins] entry points"),
        ("[plugport.plugins]\na.b = m\n", "is not module:Class"),
        ("[plugport.plugins]\na.b = m:A [extra]\n", "is not module:Class"),
        ("[plugport.plugins]\njust a line\n", "is not NAME = module:Class"),
    ],
)
def test_anything_but_one_plain_entry_is_refused(text: str, expected: str) -> None:
    with pytest.raises(PluginValidationError) as caught:
        plugin_wheel.plugin_entry(text, where="w.whl!entry_points.txt")
    assert expected in str(caught.value)
    assert "w.whl!entry_points.txt" in str(caught.value)


# --- reading a wheel --------------------------------------------------------------------------


def test_the_manifest_is_found_through_the_entry_point(tmp_path: Path) -> None:
    path = wheel(tmp_path)
    read = plugin_wheel.read_plugin_wheel(path)
    assert (read.manifest.name, read.manifest.version) == ("acme.hello", "1.0.0")
    assert read.dist_info == "acme_hello-1.0.0.dist-info"
    assert read.has_lock is False
    assert read_archive_manifest(path) == read.manifest  # what sign, verify and hosts use


def test_a_manifest_unlike_the_entry_or_the_wheel_is_refused(tmp_path: Path) -> None:
    other = MANIFEST.replace('"acme.hello"', '"acme.other"').replace(
        '"acme_hello.plugin:Hello"', '"acme_hello.plugin:Other"'
    )
    found = problems(wheel(tmp_path, manifest=other, version="1.1.0"))
    assert "names the plugin 'acme.other', but the [plugport.plugins] entry point names it " in (
        found
    )
    assert "'acme.hello'" in found
    assert "'acme_hello.plugin:Other'" in found
    assert "the manifest says 1.0.0, but the wheel is version 1.1.0" in found


def test_a_wheel_without_the_manifest_where_the_entry_points_is_refused(tmp_path: Path) -> None:
    entry = "[plugport.plugins]\nacme.hello = acme_other.plugin:Hello\n"
    assert "has no acme_other/plugport.toml" in problems(wheel(tmp_path, entry_points=entry))


def test_data_directories_and_a_top_level_manifest_are_refused(tmp_path: Path) -> None:
    extra = {"acme_hello-1.0.0.data/scripts/hello": "#!/bin/sh\n", "plugport.toml": MANIFEST}
    found = problems(wheel(tmp_path, extra=extra))
    assert "acme_hello-1.0.0.data: a plugin wheel keeps its files in its packages" in found
    assert "plugport.toml: a plugin wheel keeps its manifest and lock inside its package" in found


def test_a_pth_file_is_refused(tmp_path: Path) -> None:
    assert ".pth" in problems(wheel(tmp_path, extra={"evil.pth": "import os\n"}))


def test_a_file_not_named_like_a_wheel_is_refused(tmp_path: Path) -> None:
    path = wheel(tmp_path)
    renamed = path.rename(tmp_path / "plugin.whl")
    with pytest.raises(ArchiveError, match="is not named like a wheel"):
        plugin_wheel.read_plugin_wheel(renamed)


# --- unpacking ------------------------------------------------------------------------------


def test_unpacked_as_a_host_runs_it(tmp_path: Path) -> None:
    path = wheel(tmp_path, extra={"acme_hello/plugport.lock": "lock-version = 1\n"})
    read = plugin_wheel.unpack_plugin_wheel(path, tmp_path / "code")
    code = tmp_path / "code"
    assert read.has_lock
    assert sorted(p.name for p in code.iterdir()) == [
        "acme_hello",
        "plugport.lock",
        "plugport.toml",
    ]
    assert sorted(p.name for p in (code / "acme_hello").iterdir()) == ["__init__.py", "plugin.py"]
    assert (code / "plugport.toml").read_text() == MANIFEST


def test_nothing_is_unpacked_from_a_refused_wheel(tmp_path: Path) -> None:
    path = wheel(tmp_path, entry_points="")
    with pytest.raises(PluginValidationError):
        plugin_wheel.unpack_plugin_wheel(path, tmp_path / "code")
    assert not (tmp_path / "code").exists()


# --- signing ----------------------------------------------------------------------------------


def test_sign_and_verify_a_wheel(tmp_path: Path) -> None:
    path = wheel(tmp_path / "dist")
    private, public = write_keypair(tmp_path / "acme", generate_private_key())
    target, facts, _ = sign_archive(path, private)
    assert target == Path(f"{path}.sig")
    assert (facts.name, facts.version) == ("acme.hello", "1.0.0")
    assert facts == archive_facts(path)
    assert verify_archive(path, public).facts == facts
    # one byte more, and the signature no longer holds
    with path.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(SignatureError):
        verify_archive(path, public)


def test_a_wheel_that_is_no_plugin_is_not_signed(tmp_path: Path) -> None:
    path = wheel(tmp_path / "dist", entry_points="")
    private, _ = write_keypair(tmp_path / "acme", generate_private_key())
    with pytest.raises(PluginValidationError):
        sign_archive(path, private)
    assert not Path(f"{path}.sig").exists()


# --- the author's commands ------------------------------------------------------------------


def test_validate_and_publish_on_a_wheel(run_cli: RunCli, tmp_path: Path) -> None:
    path = wheel(tmp_path / "dist")
    validated = run_cli("validate", str(path))
    assert validated.exit_code == 0, validated.output
    broken = wheel(tmp_path / "broken", entry_points="")
    refused = run_cli("validate", str(broken))
    assert refused.exit_code != 0
    assert "no [plugport.plugins] entry point" in refused.output
    Path(f"{path}.sig").write_bytes(b"{}")
    published = run_cli("publish", str(path), "--registry", "http://127.0.0.1:9")
    assert published.exit_code == 1, published.output
    assert "a registry takes .plugport archives" in published.output
