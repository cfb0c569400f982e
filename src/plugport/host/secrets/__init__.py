"""The host's secrets: an encrypted store in the host home (:class:`EncryptedSecretStore`),
or HashiCorp Vault's KV v2 (:class:`~plugport.host.secrets.vault.VaultSecretStore`), chosen by
``HOME/policy.toml``'s ``[secrets]`` table (:func:`open_store`); and the OAuth2 broker that
obtains, refreshes and revokes tokens for the plugins' oauth2 credentials
(:mod:`plugport.host.secrets.oauth2`)."""

from __future__ import annotations

from plugport.host.secrets.masterkey import rotate_master_key
from plugport.host.secrets.store import EncryptedSecretStore
from plugport.runtime.capabilities._secret_source import (
    MemorySecrets,
    SecretInfo,
    SecretSource,
    SecretStore,
)

__all__ = [
    "EncryptedSecretStore",
    "MemorySecrets",
    "SecretInfo",
    "SecretSource",
    "SecretStore",
    "rotate_master_key",
]
