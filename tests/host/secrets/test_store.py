"""The encrypted store: values round-trip, are encrypted at rest and bound to their row, and
nothing about a value (but a keyed fingerprint) shows anywhere."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from plugport.errors import InvalidInputError, NotFoundError, TrustError
from plugport.host.secrets import EncryptedSecretStore, MemorySecrets
from plugport.host.secrets.store import TOUCH_INTERVAL_S

VALUE = b"s3cr3t-value-XYZZY"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLUGPORT_MASTER_KEY", raising=False)


def test_set_get_list_delete(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path)
    info = store.set("acme.jira", "token", VALUE, actor="ada")
    assert (info.plugin, info.name, info.updated_by) == ("acme.jira", "token", "ada")
    assert len(info.fingerprint) == 12
    assert store.get("acme.jira", "token") == VALUE
    [listed] = store.list()
    assert listed.fingerprint == info.fingerprint
    assert listed.last_used_at is not None
    assert store.list("acme.other") == []
    assert store.delete("acme.jira", "token") is True
    assert store.delete("acme.jira", "token") is False
    with pytest.raises(NotFoundError, match=r"plugport secret set acme.jira token"):
        store.get("acme.jira", "token")


def test_update_keeps_created_at(tmp_path: Path) -> None:
    clock = iter([100.0, 200.0, 300.0, 400.0])
    store = EncryptedSecretStore(tmp_path, clock=lambda: next(clock))
    first = store.set("acme.jira", "token", VALUE)
    second = store.set("acme.jira", "token", b"other", actor="bob")
    assert (second.created_at, second.updated_at, second.updated_by) == (
        first.created_at,
        200.0,
        "bob",
    )
    assert second.fingerprint != first.fingerprint


def test_nothing_is_created_until_a_secret_is_set(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path / "home")
    with pytest.raises(NotFoundError):
        store.get("acme.jira", "token")
    assert store.list() == []
    assert store.delete("acme.jira", "x") is False
    assert store.purge("acme.jira") == 0
    assert not (tmp_path / "home").exists()


def test_files_are_private_and_value_is_not_in_them(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path)
    store.set("acme.jira", "token", VALUE)
    store.close()
    for name in ("master.key", "secrets.sqlite"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    for path in tmp_path.iterdir():
        assert VALUE not in path.read_bytes()


def test_fingerprint_is_keyed_not_a_plain_hash(tmp_path: Path) -> None:
    import hashlib

    a = EncryptedSecretStore(tmp_path / "a").set("acme.jira", "token", b"1234")
    b = EncryptedSecretStore(tmp_path / "b").set("acme.jira", "token", b"1234")
    assert a.fingerprint != b.fingerprint  # different master keys
    for algorithm in ("sha256", "sha1", "md5"):
        assert a.fingerprint not in hashlib.new(algorithm, b"1234").hexdigest()


def test_bad_input_changes_nothing(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path)
    with pytest.raises(InvalidInputError, match="empty"):
        store.set("acme.jira", "token", b"")
    with pytest.raises(InvalidInputError, match="65536 bytes"):
        store.set("acme.jira", "token", b"x" * (64 * 1024 + 1))
    with pytest.raises(InvalidInputError, match="secret name"):
        store.set("acme.jira", "no-dashes", VALUE)
    with pytest.raises(InvalidInputError, match="plugin"):
        store.set("NotAPlugin", "token", VALUE)
    assert list(tmp_path.iterdir()) == []
    store.set("acme.jira", "token", b"x" * (64 * 1024))  # the limit itself is fine


def test_last_used_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    now = [1000.0]
    store = EncryptedSecretStore(tmp_path, clock=lambda: now[0])
    store.set("acme.jira", "token", VALUE)
    store.get("acme.jira", "token")
    now[0] += TOUCH_INTERVAL_S / 2
    store.get("acme.jira", "token")
    assert store.list()[0].last_used_at == 1000.0
    now[0] += TOUCH_INTERVAL_S
    store.get("acme.jira", "token")
    assert store.list()[0].last_used_at == now[0]


def test_purge_removes_only_that_plugin(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path)
    store.set("acme.jira", "token", VALUE)
    store.set("acme.jira", "hook", VALUE)
    store.set("acme.slack", "token", VALUE)
    assert store.purge("acme.jira") == 2
    assert [(i.plugin, i.name) for i in store.list()] == [("acme.slack", "token")]


def _raw(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "secrets.sqlite", isolation_level=None)


def test_flipped_ciphertext_byte_fails_clearly(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path)
    store.set("acme.jira", "token", VALUE)
    with _raw(tmp_path) as raw:
        [sealed] = raw.execute("SELECT ciphertext FROM secrets").fetchone()
        flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
        raw.execute("UPDATE secrets SET ciphertext = ?", (flipped,))
    with pytest.raises(TrustError, match=r"acme.jira/token .* failed to decrypt") as caught:
        store.get("acme.jira", "token")
    assert VALUE.decode() not in str(caught.value)


def test_row_moved_to_another_plugin_or_name_fails(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path)
    store.set("acme.jira", "token", VALUE)
    store.set("acme.evil", "token", b"mine")
    with _raw(tmp_path) as raw:
        raw.execute("DELETE FROM secrets WHERE plugin = 'acme.evil'")
        raw.execute(
            "INSERT INTO secrets SELECT 'acme.evil', name, nonce, ciphertext, key_id, "
            "fingerprint, created_at, updated_at, updated_by, last_used_at FROM secrets"
        )
        raw.execute(
            "INSERT INTO secrets SELECT plugin, 'other', nonce, ciphertext, key_id, "
            "fingerprint, created_at, updated_at, updated_by, last_used_at FROM secrets "
            "WHERE plugin = 'acme.jira'"
        )
    for plugin, name in (("acme.evil", "token"), ("acme.jira", "other")):
        with pytest.raises(TrustError, match="copied from another plugin or name"):
            store.get(plugin, name)
    assert store.get("acme.jira", "token") == VALUE


def test_another_master_key_is_named(tmp_path: Path) -> None:
    EncryptedSecretStore(tmp_path, master_key=os.urandom(32)).set("acme.jira", "token", VALUE)
    with pytest.raises(TrustError, match=r"encrypted with master key [0-9a-f]{8}, but"):
        EncryptedSecretStore(tmp_path, master_key=os.urandom(32)).get("acme.jira", "token")


def test_missing_key_file_with_rows_says_restore(tmp_path: Path) -> None:
    store = EncryptedSecretStore(tmp_path)
    store.set("acme.jira", "token", VALUE)
    store.close()
    (tmp_path / "master.key").unlink()
    with pytest.raises(TrustError, match=r"restore .*master.key"):
        EncryptedSecretStore(tmp_path).get("acme.jira", "token")
    assert not (tmp_path / "master.key").exists()  # a read makes no key


def test_memory_secrets_has_the_same_api() -> None:
    memory = MemorySecrets()
    info = memory.set("acme.jira", "token", VALUE, actor="ada")
    assert memory.get("acme.jira", "token") == VALUE
    assert [i.name for i in memory.list("acme.jira")] == ["token"]
    assert memory.list()[0].last_used_at is not None
    assert info.updated_by == "ada"
    assert memory.delete("acme.jira", "token")
    assert not memory.delete("acme.jira", "token")
    with pytest.raises(NotFoundError):
        memory.get("acme.jira", "token")
