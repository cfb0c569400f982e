"""The master key: env or 0600 file, refused when others can read it, rotation finished after
a crash at any step."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from plugport.errors import InvalidInputError
from plugport.host.secrets import EncryptedSecretStore, rotate_master_key
from plugport.host.secrets.masterkey import KEY_ENV, encode_key, key_id, load_master_key

VALUE = b"s3cr3t-value-XYZZY"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _filled(home: Path) -> EncryptedSecretStore:
    store = EncryptedSecretStore(home)
    store.set("acme.jira", "token", VALUE)
    store.set("acme.slack", "hook", b"other-value")
    return store


def test_key_file_made_on_first_set_only(tmp_path: Path) -> None:
    assert load_master_key(tmp_path, create=False) is None
    assert not (tmp_path / "master.key").exists()
    made = load_master_key(tmp_path, create=True)
    assert made is not None
    assert len(made.key) == 32
    assert load_master_key(tmp_path, create=True) == made  # kept, not replaced
    assert made.key.hex() not in repr(made)


def test_wide_key_file_is_refused(tmp_path: Path) -> None:
    store = _filled(tmp_path)
    store.close()
    key_file = tmp_path / "master.key"
    key_file.chmod(0o644)
    with pytest.raises(InvalidInputError, match=f"{key_file}: mode 644.*chmod 600 {key_file}"):
        EncryptedSecretStore(tmp_path).get("acme.jira", "token")
    with pytest.raises(InvalidInputError, match="chmod 600"):
        EncryptedSecretStore(tmp_path).set("acme.jira", "token", b"new")
    key_file.chmod(0o600)
    assert EncryptedSecretStore(tmp_path).get("acme.jira", "token") == VALUE


def test_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv(KEY_ENV, base64.urlsafe_b64encode(key).decode())
    store = EncryptedSecretStore(tmp_path)
    store.set("acme.jira", "token", VALUE)
    assert not (tmp_path / "master.key").exists()
    assert store.key_source() == KEY_ENV
    monkeypatch.setenv(KEY_ENV, "too-short")
    with pytest.raises(InvalidInputError, match=f"{KEY_ENV}: not a master key"):
        EncryptedSecretStore(tmp_path).get("acme.jira", "token")


def test_rotate_with_key_file(tmp_path: Path) -> None:
    before = _filled(tmp_path).list()
    old_key = (tmp_path / "master.key").read_text()
    new_id = rotate_master_key(tmp_path)
    assert (tmp_path / "master.key").read_text() != old_key
    assert not (tmp_path / "master.key.old").exists()
    store = EncryptedSecretStore(tmp_path)
    assert store.get("acme.jira", "token") == VALUE
    assert store.get("acme.slack", "hook") == b"other-value"
    assert [i.fingerprint for i in store.list()] != [i.fingerprint for i in before]
    key = load_master_key(tmp_path, create=False)
    assert key is not None
    assert key.id == new_id


def test_rotate_with_env_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = os.urandom(32), os.urandom(32)
    monkeypatch.setenv(KEY_ENV, encode_key(old))
    _filled(tmp_path).close()
    with pytest.raises(InvalidInputError, match="--new-key-env"):
        rotate_master_key(tmp_path)
    assert rotate_master_key(tmp_path, new_key=new) == key_id(new)
    assert not (tmp_path / "master.key").exists()
    monkeypatch.setenv(KEY_ENV, encode_key(new))
    assert EncryptedSecretStore(tmp_path).get("acme.jira", "token") == VALUE


def test_rotate_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="nothing to rotate"):
        rotate_master_key(tmp_path)
    assert not (tmp_path / "master.key").exists()


class _Crash(Exception):
    pass


def test_crash_after_new_key_file_is_finished_on_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _filled(tmp_path).close()

    def crash(*args: object, **kwargs: object) -> None:
        raise _Crash

    monkeypatch.setattr(EncryptedSecretStore, "_reencrypt", crash)
    with pytest.raises(_Crash):
        rotate_master_key(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "master.key.old").exists()  # the old key waits for the rows
    store = EncryptedSecretStore(tmp_path)
    assert store.get("acme.jira", "token") == VALUE
    assert store.get("acme.slack", "hook") == b"other-value"
    assert not (tmp_path / "master.key.old").exists()


def test_crash_inside_the_transaction_changes_no_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _filled(tmp_path).close()
    import plugport.host.secrets.store as module

    real, calls = module.fingerprint, []

    def second_row_crashes(key: bytes, value: bytes) -> str:
        calls.append(value)
        if len(calls) == 2:
            raise _Crash
        return real(key, value)

    monkeypatch.setattr(module, "fingerprint", second_row_crashes)
    with pytest.raises(_Crash):
        rotate_master_key(tmp_path)
    monkeypatch.undo()
    store = EncryptedSecretStore(tmp_path)
    assert store.get("acme.jira", "token") == VALUE  # resumed on open
    assert len({i for i in os.listdir(tmp_path) if i.startswith("master.key")}) == 1


def test_crash_before_the_new_key_file_leaves_the_old_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _filled(tmp_path).close()
    import plugport.host.secrets.store as module

    real = module.write_key_file

    def crash_on_second(path: Path, key: bytes) -> None:
        if path.name == "master.key":
            raise _Crash
        real(path, key)

    monkeypatch.setattr(module, "write_key_file", crash_on_second)
    with pytest.raises(_Crash):
        rotate_master_key(tmp_path)
    monkeypatch.undo()
    store = EncryptedSecretStore(tmp_path)
    assert store.get("acme.jira", "token") == VALUE
    assert not (tmp_path / "master.key.old").exists()
