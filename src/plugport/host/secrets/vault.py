"""Secrets in HashiCorp Vault's KV v2 engine (``hvac``), at
``<mount>/data/<prefix>/<workspace>/<plugin>/<name>``, with the same API as the encrypted file
store. Vault encrypts and controls access; this module only maps the API and translates hvac's
exceptions into ours in one place (:func:`_translated`), never with the token or a value in
the message.

Each secret is one KV entry: ``value`` (base64), ``fingerprint``, ``created_at``,
``updated_at``, ``updated_by``. Fingerprints are HMACs under a key kept in Vault beside the
workspace's secrets (``<prefix>/<workspace>/_plugport/fingerprint``). ``last_used_at`` is kept
by this process only: recording each use in Vault would write a new version per read."""

from __future__ import annotations

import base64
import builtins
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import hvac
import hvac.exceptions
import requests

from plugport.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    SecretBackendError,
    TrustError,
)
from plugport.host.secrets._rules import check_names, check_value, fingerprint
from plugport.runtime.capabilities._secret_source import SecretInfo

__all__ = ["VaultSecretStore"]

_OWN = "_plugport"  # not a plugin name (those have a '.'): the store's own entries


class VaultSecretStore:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        mount: str = "secret",
        prefix: str = "plugport",
        workspace: str = "default",
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.mount = mount
        self.root = f"{prefix.strip('/')}/{workspace}"
        self._kv = hvac.Client(url=url, token=token, timeout=timeout_s).secrets.kv.v2
        self._clock = clock
        self._used: dict[tuple[str, str], float] = {}
        self._fingerprint_key: bytes | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the token
        return f"VaultSecretStore({self.url!r}, mount={self.mount!r}, root={self.root!r})"

    def path(self, plugin: str, name: str) -> str:
        return f"{self.root}/{plugin}/{name}"

    # --- the SecretStore API --------------------------------------------------------------

    def get(self, plugin: str, name: str) -> bytes:
        data = self._read(plugin, name)
        if data is None:
            raise NotFoundError(
                "secret", f"{plugin}/{name}", f"set it with plugport secret set {plugin} {name}"
            )
        with self._lock:
            self._used[(plugin, name)] = self._clock()
        return _value(data, self.path(plugin, name))

    def set(self, plugin: str, name: str, value: bytes, *, actor: str = "operator") -> SecretInfo:
        check_names(plugin, name)
        check_value(plugin, name, value)
        path = self.path(plugin, name)
        with _translated(self.url, self.mount, path):
            try:
                current = self._kv.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                current = None
            now = self._clock()
            previous = current["data"]["data"] if current else {}
            data = {
                "value": base64.b64encode(value).decode(),
                "fingerprint": fingerprint(self._key(), value),
                "created_at": previous.get("created_at", now),
                "updated_at": now,
                "updated_by": actor,
            }
            version = current["data"]["metadata"]["version"] if current else 0
            self._kv.create_or_update_secret(
                path=path, secret=data, cas=version, mount_point=self.mount
            )
        return self._info(plugin, name, data)

    def delete(self, plugin: str, name: str) -> bool:
        if self._read(plugin, name) is None:
            return False
        path = self.path(plugin, name)
        with _translated(self.url, self.mount, path):
            self._kv.delete_metadata_and_all_versions(path=path, mount_point=self.mount)
        with self._lock:
            self._used.pop((plugin, name), None)
        return True

    def list(self, plugin: str | None = None) -> builtins.list[SecretInfo]:
        plugins = [plugin] if plugin else [p for p in self._keys(self.root) if "." in p]
        found = []
        for one in sorted(plugins):
            for name in sorted(self._keys(f"{self.root}/{one}")):
                data = self._read(one, name)
                if data is not None:
                    found.append(self._info(one, name, data))
        return found

    def purge(self, plugin: str) -> int:
        return sum(self.delete(plugin, name) for name in self._keys(f"{self.root}/{plugin}"))

    # --- Vault ----------------------------------------------------------------------------

    def _read(self, plugin: str, name: str) -> dict[str, Any] | None:
        path = self.path(plugin, name)
        with _translated(self.url, self.mount, path):
            try:
                answer = self._kv.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                return None
        data: dict[str, Any] = answer["data"]["data"]
        return data

    def _keys(self, path: str) -> builtins.list[str]:
        with _translated(self.url, self.mount, path):
            try:
                answer = self._kv.list_secrets(path=path, mount_point=self.mount)
            except hvac.exceptions.InvalidPath:
                return []
        return [str(key).rstrip("/") for key in answer["data"]["keys"]]

    def _key(self) -> bytes:
        """The workspace's fingerprint key, made (check-and-set: once) when first needed."""
        if self._fingerprint_key is None:
            path = f"{self.root}/{_OWN}/fingerprint"
            with _translated(self.url, self.mount, path):
                try:
                    answer = self._kv.read_secret_version(
                        path=path, mount_point=self.mount, raise_on_deleted_version=True
                    )
                    text = answer["data"]["data"]["key"]
                except hvac.exceptions.InvalidPath:
                    text = base64.b64encode(os.urandom(32)).decode()
                    self._kv.create_or_update_secret(
                        path=path, secret={"key": text}, cas=0, mount_point=self.mount
                    )
            self._fingerprint_key = base64.b64decode(text)
        return self._fingerprint_key

    def _info(self, plugin: str, name: str, data: dict[str, Any]) -> SecretInfo:
        with self._lock:
            used = self._used.get((plugin, name))
        return SecretInfo(
            plugin,
            name,
            str(data.get("fingerprint", "")),
            float(data.get("created_at", 0)),
            float(data.get("updated_at", 0)),
            str(data.get("updated_by", "")),
            used,
        )


def _value(data: dict[str, Any], path: str) -> bytes:
    try:
        return base64.b64decode(data["value"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise TrustError(
            f"Vault entry {path} is not a Plugport secret (no base64 'value'); set it again "
            "with plugport secret set"
        ) from None


@contextlib.contextmanager
def _translated(url: str, mount: str, path: str) -> Iterator[None]:
    """hvac's and requests' exceptions as ours, naming the URL, mount and path (never the
    token: hvac's own messages are not passed on)."""
    where = f"{mount}/data/{path}"
    try:
        yield
    except hvac.exceptions.InvalidPath:
        raise NotFoundError("secret", where) from None
    except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
        raise PermissionDeniedError(
            "host",
            "secrets",
            f"Vault at {url} refused {where}",
            f"give the token (VAULT_TOKEN) a policy with create, read, update, delete and "
            f'list on path "{mount}/data/{path.split("/", maxsplit=1)[0]}/*" and '
            f'"{mount}/metadata/{path.split("/", maxsplit=1)[0]}/*"',
        ) from None
    except hvac.exceptions.InvalidRequest:
        raise ConflictError(
            "secret", where, "was changed by someone else while being set; try again"
        ) from None
    except hvac.exceptions.VaultDown:
        raise SecretBackendError(url, "Vault is sealed or down (HTTP 503); unseal it") from None
    except hvac.exceptions.RateLimitExceeded:
        raise SecretBackendError(
            url, "Vault is rate limiting this client (HTTP 429); try again later"
        ) from None
    except hvac.exceptions.VaultError as exc:
        raise SecretBackendError(url, f"Vault failed: {type(exc).__name__}") from None
    except requests.RequestException as exc:
        raise SecretBackendError(
            url, f"cannot reach Vault ({type(exc).__name__}); check vault_url in policy.toml"
        ) from None
