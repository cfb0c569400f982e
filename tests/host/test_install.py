"""Putting plugins in place with real signed archives: every refusal happens before anything
is unpacked (or leaves staging empty), a switch is journalled, and confirm, roll back, recover
and sweep keep exactly the directories the state or a journal points at."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugport import scaffold
from plugport.archive import pack_tree, sha256_file
from plugport.authoring import archive_facts, pack_plugin
from plugport.errors import PluginValidationError, SignatureError
from plugport.host.install import HostPaths, Installer, Staged
from plugport.host.state import HostAudit, HostState, Installation, Journal
from plugport.index import IndexEntry
from plugport.signing import fingerprint, generate_private_key, key_id, sign

NAME = "acme.hello"
REGISTRY = "https://registry.example.com"
GRANTED: dict[str, Any] = {"network": [], "storage": 0, "ui": [], "config": False}


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Home:
    """A host home with its state and installer, and a place to build signed archives."""

    def __init__(self, tmp_path: Path) -> None:
        self.paths = HostPaths(tmp_path / "home")
        self.paths.make()
        self.clock = Clock()
        self.state = HostState(self.paths.state_file, clock=self.clock)
        self.installer = Installer(self.paths, self.state, clock=self.clock)
        self.key = generate_private_key()
        self.builds = tmp_path / "builds"
        self.builds.mkdir()

    def source(self, version: str = "0.1.0", edit: Callable[[Path], None] | None = None) -> Path:
        source = Path(tempfile.mkdtemp(dir=self.builds)) / "src"
        scaffold.create_plugin(NAME, "basic", source)
        manifest = source / "plugport.toml"
        text = manifest.read_text(encoding="utf-8")
        manifest.write_text(text.replace('version = "0.1.0"', f'version = "{version}"'))
        if edit is not None:
            edit(source)
        return source

    def build(self, version: str = "0.1.0", edit: Callable[[Path], None] | None = None) -> Path:
        source = self.source(version, edit)
        return pack_plugin(source, source.parent).result.path

    def sign(self, archive: Path, key: Ed25519PrivateKey | None = None) -> bytes:
        return sign(key or self.key, archive_facts(archive))

    def entry(self, archive: Path, **changes: Any) -> IndexEntry:
        facts = archive_facts(archive)
        values: dict[str, Any] = {
            "name": facts.name,
            "version": facts.version,
            "sha256": facts.sha256,
            "length": facts.length,
            "key_id": key_id(self.key.public_key()),
            "yanked": False,
        }
        values.update(changes)
        return IndexEntry(**values)

    def stage(
        self,
        archive: Path,
        *,
        signature: bytes | None = None,
        expected: IndexEntry | None = None,
        key: Ed25519PrivateKey | None = None,
    ) -> Staged:
        return self.installer.stage_archive(
            archive,
            signature=signature if signature is not None else self.sign(archive),
            publisher_key=(key or self.key).public_key(),
            expected=expected,
            source_kind="registry",
            source=REGISTRY,
        )

    def switch(
        self,
        staged: Staged,
        *,
        operation: str = "install",
        permissions: dict[str, Any] | None = None,
        requested: tuple[str, ...] = (NAME,),
    ) -> list[Journal]:
        return self.installer.switch(
            [staged],
            permissions={staged.name: permissions if permissions is not None else GRANTED},
            requested=requested,
            actor="ada",
            operation=operation,
        )

    def install(self, version: str = "0.1.0", **options: Any) -> list[Journal]:
        """Build, stage and switch ``version``, leaving it unconfirmed."""
        archive = self.build(version)
        return self.switch(self.stage(archive, expected=self.entry(archive)), **options)

    def staging(self) -> list[str]:
        return sorted(p.name for p in self.paths.staging.iterdir())

    def version_dirs(self, name: str = NAME) -> list[str]:
        plugin = self.paths.plugins / name
        return sorted(p.name for p in plugin.iterdir()) if plugin.is_dir() else []

    def dir_of(self, version: str) -> Path:
        row = self.state.get(NAME)
        assert row is not None
        assert row.version == version
        return self.paths.code_dir(row)

    def last_audit(self) -> HostAudit:
        return self.state.audit_trail(limit=1)[0]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    made = Home(tmp_path)
    yield made
    made.state.close()


def nothing_staged_or_installed(home: Home) -> None:
    assert home.staging() == []
    assert list(home.paths.plugins.iterdir()) == []
    assert home.state.installations() == []
    assert home.state.journals() == []


# --- HostPaths --------------------------------------------------------------------------------


def test_host_paths_lay_out_a_home(tmp_path: Path) -> None:
    paths = HostPaths(tmp_path / "h")
    paths.make()
    assert paths.state_file == tmp_path / "h" / "host.sqlite"
    for sub in ("runtime", "plugins", "staging", "cache"):
        assert (tmp_path / "h" / sub).is_dir()
        assert (tmp_path / "h" / sub).stat().st_mode & 0o777 == 0o700
    sha = "0123456789ab" + "f" * 52
    row = Installation(NAME, "1.2.0", "registry", REGISTRY, sha, "", True, True, {}, {})
    assert paths.code_dir(row) == tmp_path / "h" / "plugins" / NAME / "1.2.0-0123456789ab"
    dev = Installation(NAME, "1.2.0", "dev", "/src/hello", "", "", True, True, {}, {})
    assert paths.code_dir(dev) == Path("/src/hello")


# --- stage ------------------------------------------------------------------------------------


def test_a_verified_archive_is_unpacked_into_staging(home: Home) -> None:
    archive = home.build()
    staged = home.stage(archive, expected=home.entry(archive))
    digest, _ = sha256_file(archive)
    assert (staged.name, staged.version) == (NAME, "0.1.0")
    assert staged.sha256 == digest
    assert staged.key_id == key_id(home.key.public_key())
    assert (staged.source_kind, staged.source) == ("registry", REGISTRY)
    assert staged.code_dir.name == "code"
    assert staged.code_dir.parent.parent == home.paths.staging
    assert home.staging() == [staged.code_dir.parent.name]
    manifest = staged.code_dir / "plugport.toml"
    assert 'version = "0.1.0"' in manifest.read_text(encoding="utf-8")
    assert (staged.code_dir / "hello" / "plugin.py").is_file()
    assert list(home.paths.plugins.iterdir()) == []
    assert home.state.installations() == []


def test_an_archive_without_an_index_entry_is_checked_by_its_signature_alone(home: Home) -> None:
    archive = home.build("0.3.0")
    staged = home.stage(archive)
    assert (staged.name, staged.version) == (NAME, "0.3.0")
    assert staged.key_id == key_id(home.key.public_key())


@pytest.mark.parametrize("field", ["sha256", "length"])
def test_an_archive_unlike_its_index_entry_is_refused_before_unpacking(
    home: Home, field: str
) -> None:
    archive = home.build()
    digest, length = sha256_file(archive)
    claimed = {"sha256": "0" * 64} if field == "sha256" else {"length": length + 1}
    expected = home.entry(archive, **claimed)
    with pytest.raises(SignatureError) as caught:
        home.stage(archive, expected=expected)
    assert caught.value.part == "archive"
    assert str(caught.value) == (
        f"{NAME} 0.1.0: the archive is {length} bytes with sha256 {digest[:16]}…, but the "
        f"signed index says {expected.length} bytes with sha256 {expected.sha256[:16]}…"
    )
    nothing_staged_or_installed(home)


def test_a_signature_by_another_key_is_refused(home: Home) -> None:
    archive = home.build()
    other = generate_private_key()
    with pytest.raises(SignatureError) as caught:
        home.stage(archive, signature=home.sign(archive, other), expected=home.entry(archive))
    assert caught.value.part == "key"
    assert str(caught.value) == (
        f"signed by key {fingerprint(key_id(other.public_key()))}…, "
        f"not by the given key {fingerprint(key_id(home.key.public_key()))}…"
    )
    nothing_staged_or_installed(home)


def test_a_signature_for_another_archive_is_refused(home: Home) -> None:
    archive = home.build("0.1.0")
    other_signature = home.sign(home.build("0.2.0"))
    with pytest.raises(SignatureError) as caught:
        home.stage(archive, signature=other_signature, expected=home.entry(archive))
    assert caught.value.part == "archive"
    assert "version is 0.1.0, signed 0.2.0" in str(caught.value)
    assert str(caught.value).startswith("archive does not match what was signed: ")
    nothing_staged_or_installed(home)


def test_an_index_entry_naming_another_publisher_key_is_refused(home: Home) -> None:
    archive = home.build()
    other_id = key_id(generate_private_key().public_key())
    with pytest.raises(SignatureError) as caught:
        home.stage(archive, expected=home.entry(archive, key_id=other_id))
    assert caught.value.part == "key"
    mine = key_id(home.key.public_key())
    assert str(caught.value) == (
        f"{NAME} 0.1.0 is signed by {mine[:16]}…, but the signed index says {other_id[:16]}…"
    )
    nothing_staged_or_installed(home)


def test_an_index_entry_for_another_plugin_is_refused(home: Home) -> None:
    archive = home.build()
    with pytest.raises(SignatureError) as caught:
        home.stage(archive, expected=home.entry(archive, name="acme.other"))
    assert caught.value.part == "statement"
    assert str(caught.value) == "the signature is for acme.hello 0.1.0, not acme.other 0.1.0"
    nothing_staged_or_installed(home)


def _other_code(source: Path) -> None:
    (source / "hello" / "plugin.py").write_text(
        "from plugport.sdk import Plugin, hook\n\n\nclass HelloPlugin(Plugin):\n"
        "    @hook('greet')\n    def greet(self, name):\n        return 'pwned'\n"
    )


def _flip_last_byte(archive: Path) -> None:
    data = bytearray(archive.read_bytes())
    data[-10] ^= 0xFF  # inside the end of central directory: the zip no longer opens
    archive.write_bytes(bytes(data))


def _flip_middle_byte(archive: Path) -> None:
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))


def _append(archive: Path) -> None:
    archive.write_bytes(archive.read_bytes() + b"extra")


def _garbage(archive: Path) -> None:
    archive.write_bytes(b"not a zip at all")


@pytest.mark.parametrize(
    "tamper",
    [_flip_middle_byte, _flip_last_byte, _append, _garbage],
    ids=["middle byte", "central directory", "appended", "replaced"],
)
def test_an_archive_changed_after_signing_is_refused_before_unpacking(
    home: Home, tamper: Callable[[Path], None]
) -> None:
    archive = home.build()
    signature = home.sign(archive)
    signed_digest, _ = sha256_file(archive)
    tamper(archive)
    digest, _ = sha256_file(archive)
    with pytest.raises(SignatureError) as caught:
        home.stage(archive, signature=signature)
    assert caught.value.part == "archive"
    assert f"sha256 is {digest}, signed {signed_digest}" in str(caught.value)
    nothing_staged_or_installed(home)


def test_a_rebuilt_archive_with_the_old_signature_is_refused(home: Home) -> None:
    original = home.build()
    signature = home.sign(original)
    rebuilt = home.build(edit=_other_code)  # same name and version, other code
    with pytest.raises(SignatureError) as caught:
        home.stage(rebuilt, signature=signature)
    assert caught.value.part == "archive"
    assert f"signed {sha256_file(original)[0]}" in str(caught.value)
    nothing_staged_or_installed(home)
    with pytest.raises(SignatureError) as against_index:  # and against the index first
        home.stage(rebuilt, signature=signature, expected=home.entry(original))
    assert against_index.value.part == "archive"
    assert "but the signed index says" in str(against_index.value)
    nothing_staged_or_installed(home)


def test_an_invalid_plugin_tree_is_refused_and_staging_is_cleaned(home: Home) -> None:
    source = home.source()
    (source / "hello" / "plugin.py").unlink()  # the manifest's entry module is gone
    archive = source.parent / "broken.plugport"
    pack_tree(source, archive)  # packed without validation, then signed
    with pytest.raises(PluginValidationError) as caught:
        home.stage(archive)
    assert [p.path for p in caught.value.problems] == ["entry"]
    assert "module 'hello.plugin' not found" in caught.value.problems[0].message
    assert caught.value.source == f"{NAME} 0.1.0"
    nothing_staged_or_installed(home)


def test_a_development_directory_is_used_in_place(home: Home) -> None:
    source = home.source("0.5.0")
    staged = home.installer.stage_directory(source)
    assert staged.code_dir == source.resolve()
    assert (staged.source_kind, staged.source) == ("dev", str(source.resolve()))
    assert (staged.sha256, staged.key_id, staged.version) == ("", "", "0.5.0")
    assert home.staging() == []


def test_an_invalid_development_directory_is_refused_unchanged(home: Home) -> None:
    source = home.source()
    (source / "hello" / "plugin.py").unlink()
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    with pytest.raises(PluginValidationError) as caught:
        home.installer.stage_directory(source)
    assert [p.path for p in caught.value.problems] == ["entry"]
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before
    nothing_staged_or_installed(home)


# --- switch -----------------------------------------------------------------------------------


def test_switch_moves_the_code_into_its_version_directory_and_journals_it(home: Home) -> None:
    archive = home.build()
    staged = home.stage(archive, expected=home.entry(archive))
    home.clock.now = 2000.0
    journals = home.switch(staged, permissions={"storage": 1024})
    digest, _ = sha256_file(archive)
    target = home.paths.plugins / NAME / f"0.1.0-{digest[:12]}"
    assert journals == [Journal(NAME, "install", None, "0.1.0", 2000.0)]
    assert home.state.journals() == journals
    assert home.state.get(NAME) == Installation(
        name=NAME,
        version="0.1.0",
        source_kind="registry",
        source=REGISTRY,
        sha256=digest,
        key_id=key_id(home.key.public_key()),
        enabled=True,
        requested=True,
        permissions={"storage": 1024},
        dependencies={},
        installed_at=2000.0,
        updated_at=2000.0,
    )
    assert home.dir_of("0.1.0") == target
    assert (target / "plugport.toml").is_file()
    assert (target / "hello" / "plugin.py").is_file()
    assert not staged.code_dir.exists()
    assert home.staging() == []
    assert home.state.publisher_keys("acme") == set()  # trusted only once confirmed
    assert home.last_audit() == HostAudit(
        2000.0,
        "ada",
        "install",
        NAME,
        "switched",
        {"version": "0.1.0", "previous": None, "source": REGISTRY},
        home.last_audit().id,
    )


def test_a_plugin_pulled_in_as_a_dependency_is_not_requested(home: Home) -> None:
    home.install(requested=())
    row = home.state.get(NAME)
    assert row is not None
    assert row.requested is False


def test_an_update_keeps_the_requested_flag_and_install_time(home: Home) -> None:
    home.installer.confirm(home.install(), actor="ada")
    home.clock.now = 3000.0
    home.install("0.2.0", operation="update", requested=())
    row = home.state.get(NAME)
    assert row is not None
    assert (row.version, row.requested, row.installed_at, row.updated_at) == (
        "0.2.0",
        True,
        1000.0,
        3000.0,
    )


def test_an_update_of_a_disabled_plugin_stays_disabled_and_rolls_back_disabled(
    home: Home,
) -> None:
    home.installer.confirm(home.install(), actor="ada")
    home.state.set_enabled(NAME, False)
    previous = home.state.get(NAME)
    journals = home.install("0.2.0", operation="update")
    row = home.state.get(NAME)
    assert row is not None
    assert (row.version, row.enabled) == ("0.2.0", False)
    home.installer.roll_back(journals, actor="ada", reason="refused")
    assert home.state.get(NAME) == previous


def test_confirm_forgets_the_journal_and_deletes_the_old_version(home: Home) -> None:
    home.installer.confirm(home.install("0.1.0"), actor="ada")
    old_dir = home.dir_of("0.1.0")
    journals = home.install("0.2.0", operation="update")
    new_dir = home.dir_of("0.2.0")
    assert journals[0].previous is not None
    assert journals[0].previous.version == "0.1.0"
    assert old_dir.is_dir()
    assert new_dir.is_dir()
    home.installer.confirm(journals, actor="ada")
    assert home.state.journals() == []
    assert home.state.publisher_keys("acme") == {key_id(home.key.public_key())}
    assert not old_dir.exists()
    assert home.version_dirs() == [new_dir.name]
    audit = home.last_audit()
    assert (audit.action, audit.outcome, audit.detail) == (
        "update",
        "ok",
        {"version": "0.2.0", "previous": "0.1.0"},
    )


def test_roll_back_restores_the_previous_row_and_keeps_only_its_files(home: Home) -> None:
    home.installer.confirm(home.install("0.1.0", permissions={"storage": 10}), actor="ada")
    previous = home.state.get(NAME)
    assert previous is not None
    old_dir = home.paths.code_dir(previous)
    home.clock.now = 5000.0
    journals = home.install("0.2.0", operation="update", permissions={"storage": 99})
    new_dir = home.dir_of("0.2.0")
    home.state.set_enabled(NAME, False)  # e.g. the new version failed its health check
    home.installer.roll_back(journals, actor="ada", reason="health check failed")
    assert home.state.get(NAME) == previous
    assert previous.enabled is True
    assert previous.permissions == {"storage": 10}
    assert home.state.journals() == []
    assert old_dir.is_dir()
    assert not new_dir.exists()
    assert home.version_dirs() == [old_dir.name]
    audit = home.last_audit()
    assert (audit.action, audit.subject, audit.outcome, audit.detail) == (
        "update",
        NAME,
        "rolled-back",
        {"version": "0.2.0", "restored": "0.1.0", "reason": "health check failed"},
    )


def test_roll_back_of_a_new_install_removes_it_entirely(home: Home) -> None:
    journals = home.install()
    home.installer.roll_back(journals, actor="ada", reason="activation failed")
    assert home.state.installations() == []
    assert home.state.journals() == []
    assert list(home.paths.plugins.iterdir()) == []  # the plugin's own directory too


def test_reinstalling_the_same_archive_reuses_its_directory(home: Home) -> None:
    archive = home.build()
    home.installer.confirm(home.switch(home.stage(archive)), actor="ada")
    code = home.dir_of("0.1.0")
    journals = home.switch(home.stage(archive), operation="update")
    assert home.staging() == []
    home.installer.confirm(journals, actor="ada")
    assert home.dir_of("0.1.0") == code
    assert (code / "plugport.toml").is_file()
    assert home.version_dirs() == [code.name]


def test_recover_after_a_restart_rolls_an_unconfirmed_switch_back(home: Home) -> None:
    home.installer.confirm(home.install("0.1.0"), actor="ada")
    previous = home.state.get(NAME)
    journals = home.install("0.2.0", operation="update")
    new_dir = home.dir_of("0.2.0")
    home.state.close()  # the process dies here; a new one starts on the same home
    home.state = HostState(home.paths.state_file, clock=home.clock)
    home.installer = Installer(home.paths, home.state, clock=home.clock)
    assert home.installer.recover() == journals
    assert home.state.get(NAME) == previous
    assert home.state.journals() == []
    assert not new_dir.exists()
    assert home.version_dirs() == [home.dir_of("0.1.0").name]
    audit = home.last_audit()
    assert (audit.actor, audit.outcome, audit.detail["reason"]) == (
        "host",
        "rolled-back",
        "interrupted before it was confirmed",
    )


def test_recover_without_a_journal_only_sweeps(home: Home) -> None:
    home.installer.confirm(home.install(), actor="ada")
    leftover = home.paths.staging / "interrupted" / "code"
    leftover.mkdir(parents=True)
    (leftover / "file.py").write_text("x = 1\n")
    audits = len(home.state.audit_trail())
    assert home.installer.recover() == []
    assert home.staging() == []
    assert home.version_dirs() == [home.dir_of("0.1.0").name]
    assert len(home.state.audit_trail()) == audits


def test_sweep_deletes_orphans_but_never_what_the_state_or_a_journal_points_at(
    home: Home,
) -> None:
    home.installer.confirm(home.install("0.1.0"), actor="ada")
    old_dir = home.dir_of("0.1.0")
    home.install("0.2.0", operation="update")  # unconfirmed: the journal points at 0.1.0
    new_dir = home.dir_of("0.2.0")
    orphan = home.paths.plugins / NAME / "9.9.9-0123456789ab"
    ghost = home.paths.plugins / "acme.ghost" / "1.0.0-0123456789ab"
    for directory in (orphan, ghost, home.paths.staging / "left" / "code"):
        directory.mkdir(parents=True)
        (directory / "plugport.toml").write_text("")
    home.installer.sweep()
    assert old_dir.is_dir()
    assert new_dir.is_dir()
    assert not orphan.exists()
    assert not (home.paths.plugins / "acme.ghost").exists()
    assert sorted(p.name for p in home.paths.plugins.iterdir()) == [NAME]
    assert home.version_dirs() == sorted([old_dir.name, new_dir.name])
    assert home.staging() == []


def test_a_development_install_is_never_copied_or_swept(home: Home) -> None:
    source = home.source("0.5.0")
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    staged = home.installer.stage_directory(source)
    journals = home.switch(staged)
    row = home.state.get(NAME)
    assert row is not None
    assert (row.source_kind, row.source, row.sha256, row.key_id) == (
        "dev",
        str(source.resolve()),
        "",
        "",
    )
    assert home.paths.code_dir(row) == source.resolve()
    assert list(home.paths.plugins.iterdir()) == []
    assert home.state.publisher_keys("acme") == set()
    home.installer.confirm(journals, actor="ada")
    home.installer.sweep()
    home.installer.roll_back(home.switch(staged, operation="update"), actor="ada", reason="x")
    home.installer.remove(row, actor="ada", purge=False)
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before
    assert list(home.paths.plugins.iterdir()) == []


def test_remove_deletes_the_row_and_the_files(home: Home) -> None:
    home.installer.confirm(home.install(), actor="ada")
    row = home.state.get(NAME)
    assert row is not None
    home.installer.remove(row, actor="ada", purge=True)
    assert home.state.installations() == []
    assert list(home.paths.plugins.iterdir()) == []
    audit = home.last_audit()
    assert (audit.action, audit.outcome, audit.detail) == (
        "uninstall",
        "ok",
        {"version": "0.1.0", "purge": True},
    )


def test_discard_removes_staged_archives_but_not_development_directories(home: Home) -> None:
    staged = home.stage(home.build())
    source = home.source()
    dev = home.installer.stage_directory(source)
    home.installer.discard([staged, dev])
    assert home.staging() == []
    assert (source / "plugport.toml").is_file()


def test_an_install_rolled_back_trusts_no_publisher_key(home: Home) -> None:
    journals = home.install("0.1.0")
    home.installer.roll_back(journals, actor="ada", reason="it did not start")
    assert home.state.publisher_keys("acme") == set()
    assert home.state.get(NAME) is None
