"""``plugport lock`` against a local index over real HTTP, and ``plugport pack`` with the lock:
exact versions and hashes, pip's options honoured, wheels in the archive, reproducible bytes,
and every refusal naming the package and what to do."""

from __future__ import annotations

import hashlib
import tomllib
import zipfile
from pathlib import Path

import pytest

from plugport.authoring import pack_plugin
from plugport.deps.locker import IndexOptions, lock_plugin
from plugport.deps.lockfile import load_lock
from plugport.errors import DependencyError, PluginValidationError
from plugport.testing.pypi import LocalIndex, build_wheel
from tests.conftest import RunCli
from tests.deps.conftest import plugin_source


def locked(index: LocalIndex, source: Path, **options: object) -> None:
    lock_plugin(source, index=IndexOptions(index_url=index.url), **options)  # type: ignore[arg-type]


def test_lock_pins_every_package_with_its_hash(index: LocalIndex, tmp_path: Path) -> None:
    source = plugin_source(tmp_path, "acme.md", ["markdown>=3.5", "tinyfmt"])
    locked(index, source)
    lock = load_lock(source)
    assert lock is not None
    assert [(p.name, p.version) for p in lock.packages] == [
        ("markdown", lock.packages[0].version),
        ("tinyfmt", "1.1"),
        ("tinyutil", "1.0"),  # tinyfmt 1.1's own dependency
    ]
    for package in lock.packages:
        [wheel] = package.wheels
        served = index.directory / wheel.filename
        assert wheel.sha256 == hashlib.sha256(served.read_bytes()).hexdigest()
        assert wheel.size == served.stat().st_size
    assert any(r.startswith("/simple/tinyfmt/") for r in index.requests)  # pip asked our index


def test_locking_again_keeps_the_pins_until_upgrade(
    index: LocalIndex, tmp_path: Path, wheelhouse: Path
) -> None:
    source = plugin_source(tmp_path, "acme.md", ["tinyfmt"])
    locked(index, source)
    first = (source / "plugport.lock").read_text()
    build_wheel(
        wheelhouse, "tinyfmt", "1.2", {"tinyfmt/__init__.py": "def shout(x):\n    return x\n"}
    )
    try:
        locked(index, source)
        assert (source / "plugport.lock").read_text() == first  # same inputs, same lock
        locked(index, source, upgrade=True)
        lock = load_lock(source)
        assert lock is not None
        assert lock.package("tinyfmt").version == "1.2"
    finally:
        (wheelhouse / "tinyfmt-1.2-py3-none-any.whl").unlink()


def test_a_file_that_changed_under_the_same_name_is_refused(
    index: LocalIndex, tmp_path: Path, wheelhouse: Path
) -> None:
    source = plugin_source(tmp_path, "acme.md", ["tinyutil"])
    locked(index, source)
    before = (source / "plugport.lock").read_text()
    original = (wheelhouse / "tinyutil-1.0-py3-none-any.whl").read_bytes()
    build_wheel(wheelhouse, "tinyutil", "1.0", {"tinyutil.py": "BANG = 'pwned'\n"})
    try:
        with pytest.raises(DependencyError, match="the file changed under the same name") as caught:
            locked(index, source)
        assert caught.value.package == "tinyutil"
        assert (source / "plugport.lock").read_text() == before
    finally:
        (wheelhouse / "tinyutil-1.0-py3-none-any.whl").write_bytes(original)


def test_pip_configuration_is_honoured(
    index: LocalIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --index-url here: pip's own configuration points at the index, as for pip itself."""
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nindex-url = {index.url}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    source = plugin_source(tmp_path, "acme.md", ["tinyutil"])
    lock_plugin(source)
    assert load_lock(source).package("tinyutil") is not None  # type: ignore[union-attr]


def test_find_links_is_honoured(index: LocalIndex, tmp_path: Path, wheelhouse: Path) -> None:
    source = plugin_source(tmp_path, "acme.md", ["tinyutil"])
    lock_plugin(
        source,
        index=IndexOptions(index_url=f"{index.url}nothing-here/", find_links=(str(wheelhouse),)),
    )
    assert load_lock(source).package("tinyutil") is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("requirement", "words"),
    [
        ("sdistonly", "pip found no wheel of sdistonly"),
        ("tinyfmt>=9", "pip found no wheel of tinyfmt>=9"),
        ("fastlib", "declare [python] platforms for compiled wheels"),
        ("shadowy", "would shadow json"),
        ("pthlib", "a .pth file"),
    ],
)
def test_what_cannot_be_locked_is_refused_and_no_lock_is_written(
    index: LocalIndex, tmp_path: Path, wheelhouse: Path, requirement: str, words: str
) -> None:
    extra = [
        build_wheel(wheelhouse, "shadowy", "1.0", {"json/__init__.py": ""}),
        build_wheel(wheelhouse, "pthlib", "1.0", {"pthlib.py": "", "pthlib.pth": "import os\n"}),
        build_wheel(
            wheelhouse,
            "fastlib",
            "1.0",
            {"fastlib.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
            tag="cp311-cp311-manylinux_2_28_x86_64",
        ),
    ]
    sdist = wheelhouse / "sdistonly-1.0.tar.gz"
    sdist.write_bytes(b"not really")
    try:
        source = plugin_source(tmp_path, "acme.md", [requirement])
        with pytest.raises(DependencyError) as caught:
            locked(index, source)
        assert words in str(caught.value)
        assert not (source / "plugport.lock").exists()
    finally:
        for path in [*extra, sdist]:
            path.unlink()


def test_a_compiled_wheel_locks_for_declared_platforms(
    index: LocalIndex, tmp_path: Path, wheelhouse: Path
) -> None:
    wheel = build_wheel(
        wheelhouse,
        "fastlib",
        "1.0",
        {"fastlib.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
        tag="cp311-cp311-manylinux_2_28_x86_64",
    )
    try:
        source = plugin_source(
            tmp_path, "acme.md", ["fastlib"], extra='platforms = ["manylinux_2_28_x86_64"]\n'
        )
        locked(index, source)
        lock = load_lock(source)
        assert lock is not None
        assert lock.platforms == ("manylinux_2_28_x86_64",)
        assert [w.filename for w in lock.wheels()] == [wheel.name]
        other = plugin_source(
            tmp_path / "b", "acme.md", ["fastlib"], extra='platforms = ["win_amd64"]\n'
        )
        with pytest.raises(DependencyError, match="pip found no wheel of fastlib for win_amd64"):
            locked(index, other)
    finally:
        wheel.unlink()


# --- pack ------------------------------------------------------------------------------------


def test_pack_ships_the_locked_wheels_reproducibly(index: LocalIndex, tmp_path: Path) -> None:
    source = plugin_source(tmp_path, "acme.md", ["markdown>=3.5", "tinyfmt"])
    locked(index, source)
    first = pack_plugin(source, tmp_path / "a").result
    second = pack_plugin(source, tmp_path / "b").result
    assert first.path.read_bytes() == second.path.read_bytes()
    lock = load_lock(source)
    assert lock is not None
    wheels = sorted(w.member for w in lock.wheels())
    assert [m for m in first.members if m.startswith("wheels/")] == wheels
    with zipfile.ZipFile(first.path) as zf:
        for wheel in lock.wheels():
            data = zf.read(wheel.member)
            assert hashlib.sha256(data).hexdigest() == wheel.sha256
            assert zf.getinfo(wheel.member).compress_type == zipfile.ZIP_STORED
        archived = tomllib.loads(zf.read("plugport.toml").decode())
    assert archived["engines"]["plugport"] == ">=0.2"  # [python] needs a Plugport that reads it
    assert "engines" not in tomllib.loads((source / "plugport.toml").read_text())  # source kept


def test_pack_refuses_a_missing_or_stale_lock(index: LocalIndex, tmp_path: Path) -> None:
    source = plugin_source(tmp_path, "acme.md", ["tinyfmt"])
    with pytest.raises(
        PluginValidationError, match=r"plugport.lock: missing: .*run `plugport lock`"
    ):
        pack_plugin(source, tmp_path / "dist")
    locked(index, source)
    manifest = source / "plugport.toml"
    manifest.write_text(manifest.read_text().replace('"tinyfmt"', '"tinyfmt", "tinyutil"'))
    with pytest.raises(
        PluginValidationError, match=r"out of date: .*added tinyutil.*run `plugport lock`"
    ):
        pack_plugin(source, tmp_path / "dist")
    assert not (tmp_path / "dist").exists()  # nothing half-made


def test_pack_refuses_when_the_cached_wheel_is_missing_or_altered(
    index: LocalIndex, tmp_path: Path
) -> None:
    source = plugin_source(tmp_path, "acme.md", ["tinyutil"])
    locked(index, source)
    [wheel] = load_lock(source).wheels()  # type: ignore[union-attr]
    cached = tmp_path / "wheel-cache" / wheel.sha256 / wheel.filename
    cached.write_bytes(cached.read_bytes() + b"x")
    with pytest.raises(DependencyError, match=r"does not have the sha256 plugport\.lock names"):
        pack_plugin(source, tmp_path / "dist")
    cached.unlink()
    with pytest.raises(DependencyError, match=r"not in the wheel cache .*run `plugport lock`"):
        pack_plugin(source, tmp_path / "dist")
    locked(index, source)  # the lock is current: this only downloads the locked file again
    assert pack_plugin(source, tmp_path / "dist").result.path.is_file()


def test_stray_files_in_wheels_are_refused(index: LocalIndex, tmp_path: Path) -> None:
    source = plugin_source(tmp_path, "acme.md", ["tinyutil"])
    locked(index, source)
    (source / "wheels").mkdir()
    (source / "wheels" / "extra-1.0-py3-none-any.whl").write_bytes(b"zip")
    with pytest.raises(
        PluginValidationError, match=r"wheels/extra-1\.0-py3-none-any\.whl: wheels/ holds only"
    ):
        pack_plugin(source, tmp_path / "dist")


# --- the CLI ---------------------------------------------------------------------------------


def test_plugport_lock_command(index: LocalIndex, tmp_path: Path, run_cli: RunCli) -> None:
    source = plugin_source(tmp_path, "acme.md", ["tinyfmt"])
    result = run_cli("lock", str(source), "--index-url", index.url)
    assert result.exit_code == 0, result.output
    assert f"locked {source / 'plugport.lock'}: 2 packages" in result.output
    assert "tinyfmt 1.1  tinyfmt-1.1-py3-none-any.whl" in result.output
    packed = run_cli("pack", str(source), "-o", "dist")
    assert packed.exit_code == 0, packed.output
    bad = plugin_source(tmp_path / "bad", "acme.md", ["nosuchthing"])
    refused = run_cli("lock", str(bad), "--index-url", index.url)
    assert refused.exit_code == 1
    assert "pip found no wheel of nosuchthing" in refused.output
    assert not (bad / "plugport.lock").exists()
