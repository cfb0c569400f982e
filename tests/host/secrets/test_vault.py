"""The Vault backend against a local fake of Vault's KV v2 HTTP API: the same API as the file
store, hvac's exceptions translated (403, 404, 429, 503, unreachable, check-and-set), and never
the token or a value in an error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from plugport.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SecretBackendError,
)
from plugport.host.secrets.backends import open_store
from plugport.host.secrets.vault import VaultSecretStore
from plugport.testing.fake_vault import FakeVault

TOKEN = "hvs.root-T0ken-abc123"  # noqa: S105 - searched for in every error
VALUE = b"vault-S3cret-value-778899"


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault(tokens={TOKEN: None, "limited": ["plugport/other/"]}) as vault:
        yield vault


def test_set_get_list_delete_purge(vault: FakeVault) -> None:
    store = VaultSecretStore(vault.url, TOKEN, workspace="ws1")
    info = store.set("acme.jira", "token", VALUE, actor="ada")
    store.set("acme.jira", "hook", b"k")
    store.set("acme.slack", "token", b"s")
    assert ("secret", "plugport/ws1/acme.jira/token") in vault.secrets
    assert VALUE not in str(vault.secrets).encode()  # stored base64, as a KV entry
    assert store.get("acme.jira", "token") == VALUE
    assert [(i.plugin, i.name) for i in store.list()] == [
        ("acme.jira", "hook"),
        ("acme.jira", "token"),
        ("acme.slack", "token"),
    ]
    [listed] = store.list("acme.slack")
    assert listed.last_used_at is None
    again = store.set("acme.jira", "token", b"new", actor="bob")
    assert again.created_at == info.created_at
    assert again.updated_by == "bob"
    assert again.fingerprint != info.fingerprint
    assert store.delete("acme.jira", "token") is True
    assert store.delete("acme.jira", "token") is False
    with pytest.raises(NotFoundError, match=r"plugport secret set acme.jira token"):
        store.get("acme.jira", "token")
    assert store.purge("acme.jira") == 1
    assert [i.plugin for i in store.list()] == ["acme.slack"]
    assert store.list("acme.none") == []


def test_workspaces_do_not_see_each_other(vault: FakeVault) -> None:
    VaultSecretStore(vault.url, TOKEN, workspace="a").set("acme.jira", "token", VALUE)
    other = VaultSecretStore(vault.url, TOKEN, workspace="b")
    assert other.list() == []
    with pytest.raises(NotFoundError):
        other.get("acme.jira", "token")


def test_forbidden_names_the_path_and_policy(vault: FakeVault) -> None:
    store = VaultSecretStore(vault.url, "limited", workspace="ws1")
    with pytest.raises(PermissionDeniedError) as caught:
        store.set("acme.jira", "token", VALUE)
    message = str(caught.value)
    assert "secret/data/plugport/ws1/acme.jira/token" in message
    assert "policy" in message
    wrong = VaultSecretStore(vault.url, "not-a-token")
    with pytest.raises(PermissionDeniedError):
        wrong.get("acme.jira", "token")
    assert vault.secrets == {}


@pytest.mark.parametrize(
    ("state", "words"), [("sealed", "sealed"), ("rate_limited", "rate limiting")]
)
def test_sealed_and_rate_limited(vault: FakeVault, state: str, words: str) -> None:
    store = VaultSecretStore(vault.url, TOKEN)
    store.set("acme.jira", "token", VALUE)
    setattr(vault, state, True)
    with pytest.raises(SecretBackendError, match=words) as caught:
        store.get("acme.jira", "token")
    assert caught.value.url == vault.url
    with pytest.raises(SecretBackendError):
        store.set("acme.jira", "token", b"other")
    setattr(vault, state, False)
    assert store.get("acme.jira", "token") == VALUE  # nothing changed


def test_unreachable_names_the_url(caplog: pytest.LogCaptureFixture) -> None:
    with FakeVault() as gone:
        url = gone.url
    caplog.set_level(logging.DEBUG)
    store = VaultSecretStore(url, TOKEN, timeout_s=2)
    with pytest.raises(SecretBackendError, match=r"cannot reach Vault") as caught:
        store.get("acme.jira", "token")
    assert url in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caplog.text


def test_check_and_set_conflict(vault: FakeVault) -> None:
    store = VaultSecretStore(vault.url, TOKEN)
    store.set("acme.jira", "token", VALUE)
    real = store._kv.create_or_update_secret

    def racing(**kwargs: object) -> object:
        # someone else writes between our read and our write
        hvac.Client(url=vault.url, token=TOKEN).secrets.kv.v2.create_or_update_secret(
            path="plugport/default/acme.jira/token", secret={"value": "eA=="}
        )
        return real(**kwargs)

    store._kv.create_or_update_secret = racing
    with pytest.raises(ConflictError, match="changed by someone else"):
        store.set("acme.jira", "token", b"mine")


def test_fake_follows_the_documented_shapes(vault: FakeVault) -> None:
    kv = hvac.Client(url=vault.url, token=TOKEN).secrets.kv.v2
    written = kv.create_or_update_secret(path="a/b", secret={"x": "1"})
    assert written["data"]["version"] == 1
    read = kv.read_secret_version(path="a/b", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"x": "1"}
    assert read["data"]["metadata"]["version"] == 1
    assert kv.list_secrets(path="a")["data"]["keys"] == ["b"]
    assert kv.list_secrets(path="")["data"]["keys"] == ["a/"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret(path="a/b", secret={"x": "2"}, cas=0)
    kv.delete_metadata_and_all_versions(path="a/b")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_version(path="a/b", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets(path="a")


def test_policy_chooses_the_backend(tmp_path: Path, vault: FakeVault) -> None:
    (tmp_path / "policy.toml").write_text(
        f'[secrets]\nbackend = "vault"\nvault_url = "{vault.url}"\nvault_workspace = "w"\n'
    )
    store = open_store(tmp_path, env={"VAULT_TOKEN": TOKEN})
    assert isinstance(store, VaultSecretStore)
    assert TOKEN not in repr(store)
    store.set("acme.jira", "token", VALUE)
    assert ("secret", "plugport/w/acme.jira/token") in vault.secrets
    with pytest.raises(InvalidInputError, match=r"needs the token in \$VAULT_TOKEN"):
        open_store(tmp_path, env={})
    (tmp_path / "policy.toml").write_text('[secrets]\nbackend = "vault"\nvault_token = "x"\n')
    with pytest.raises(InvalidInputError, match="does not know vault_token"):
        open_store(tmp_path, env={"VAULT_TOKEN": TOKEN})
    (tmp_path / "policy.toml").write_text('[secrets]\nbackend = "s3"\n')
    with pytest.raises(InvalidInputError, match="backend must be 'file' or 'vault'"):
        open_store(tmp_path)
