"""Which store holds a host home's secrets: ``HOME/policy.toml``'s ``[secrets]`` table.

[secrets]
backend = "file"        # default: HOME/secrets.sqlite, encrypted under the master key
# backend = "vault"     # HashiCorp Vault KV v2; the token from $VAULT_TOKEN, never the file
# vault_url = "https://vault.example.com:8200"
# vault_mount = "secret"
# vault_prefix = "plugport"
# vault_workspace = "default"   # default: the home directory's name
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plugport.errors import InvalidInputError
from plugport.host.secrets.store import EncryptedSecretStore
from plugport.runtime.capabilities._secret_source import SecretStore

__all__ = ["POLICY_FILE", "VAULT_TOKEN_ENV", "open_store", "secrets_policy"]

POLICY_FILE = "policy.toml"
VAULT_TOKEN_ENV = "VAULT_TOKEN"  # noqa: S105 - the name of a variable, not a secret
_KEYS = {"backend", "vault_url", "vault_mount", "vault_prefix", "vault_workspace"}


def secrets_policy(home: Path) -> dict[str, Any]:
    """The ``[secrets]`` table of ``HOME/policy.toml`` (empty when there is none)."""
    path = home / POLICY_FILE
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text()).get("secrets", {})
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path}: not a valid policy ({exc})") from None
    if not isinstance(table, dict):
        raise InvalidInputError(f"{path}: [secrets] must be a table")
    if unknown := sorted(set(table) - _KEYS):
        raise InvalidInputError(
            f"{path}: [secrets] does not know {', '.join(unknown)} (known: "
            f"{', '.join(sorted(_KEYS))}); the Vault token comes from ${VAULT_TOKEN_ENV} only"
        )
    return table


def open_store(
    home: Path, *, policy: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> SecretStore:
    """The store ``home``'s policy names; nothing is created or contacted until it is used."""
    table = dict(secrets_policy(home) if policy is None else policy)
    where = f"{home / POLICY_FILE} [secrets]"
    backend = table.get("backend", "file")
    if backend == "file":
        return EncryptedSecretStore(home)
    if backend != "vault":
        raise InvalidInputError(f"{where}: backend must be 'file' or 'vault', not {backend!r}")
    try:
        from plugport.host.secrets.vault import VaultSecretStore
    except ImportError:
        raise InvalidInputError(
            f"{where}: backend 'vault' needs hvac; pip install 'plugport[vault]'"
        ) from None

    url = table.get("vault_url")
    if not isinstance(url, str) or not url:
        raise InvalidInputError(f"{where}: backend 'vault' needs vault_url")
    token = (os.environ if env is None else env).get(VAULT_TOKEN_ENV, "")
    if not token:
        raise InvalidInputError(
            f"{where}: backend 'vault' needs the token in ${VAULT_TOKEN_ENV} (never in the file)"
        )
    return VaultSecretStore(
        url,
        token,
        mount=str(table.get("vault_mount", "secret")),
        prefix=str(table.get("vault_prefix", "plugport")),
        workspace=str(table.get("vault_workspace", Path(home).name or "default")),
    )
