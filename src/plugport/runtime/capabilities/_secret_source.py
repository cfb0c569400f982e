"""Where the runtime reads secret values: the host's store behind one small interface.

:class:`SecretSource` is what the runtime needs (read a value, forget a plugin's);
:class:`SecretStore` adds what an operator needs (set, delete, list) and is what the host's
stores implement (``plugport.host.secrets``). :class:`SecretInfo` describes a value without it."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from plugport.errors import NotFoundError

__all__ = [
    "HOST_SCOPE",
    "MemorySecrets",
    "RefreshingSource",
    "SecretInfo",
    "SecretSource",
    "SecretStore",
]

HOST_SCOPE = "_host"
"""The secrets-store scope of the host's own secrets (the mail relay's password): ``get("_host",
NAME)``. Plugin names always have a dot, so no plugin can be this scope, and a plugin's calls
only ever read its own scope."""


@dataclass(frozen=True)
class SecretInfo:
    """One secret as the operator sees it: never the value. ``fingerprint`` is a keyed hash
    (HMAC under a key of the store's), so equal values show equal fingerprints within one
    store, and a short value cannot be guessed from it."""

    plugin: str
    name: str
    fingerprint: str
    created_at: float
    updated_at: float
    updated_by: str
    last_used_at: float | None = None


class SecretSource(Protocol):
    """The host's secret values, per plugin. ``get`` raises :class:`NotFoundError` when the
    operator has not set ``name`` for ``plugin``."""

    def get(self, plugin: str, name: str) -> bytes: ...

    def purge(self, plugin: str) -> int: ...


class SecretStore(SecretSource, Protocol):
    """A :class:`SecretSource` the operator writes to."""

    def set(
        self, plugin: str, name: str, value: bytes, *, actor: str = "operator"
    ) -> SecretInfo: ...

    def delete(self, plugin: str, name: str) -> bool: ...

    def list(self, plugin: str | None = None) -> builtins.list[SecretInfo]: ...


@runtime_checkable
class RefreshingSource(Protocol):
    """A source whose values expire (OAuth2 access tokens): ``net.fetch`` asks it for a fresh
    value before sending, and for a new one once when the target answered 401 to ``refused``."""

    async def current(self, plugin: str, name: str) -> bytes: ...

    async def refreshed(self, plugin: str, name: str, refused: bytes) -> bytes: ...


class MemorySecrets:
    """A :class:`SecretStore` in memory: ``plugport.testing`` and hosts without a store."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], bytes] = {}
        self._infos: dict[tuple[str, str], SecretInfo] = {}
        self._key = os.urandom(32)  # fingerprints mean nothing outside this instance
        self._lock = threading.Lock()

    def set(self, plugin: str, name: str, value: bytes, *, actor: str = "operator") -> SecretInfo:
        now = time.time()
        fingerprint = hmac.new(self._key, bytes(value), hashlib.sha256).hexdigest()[:12]
        with self._lock:
            previous = self._infos.get((plugin, name))
            info = SecretInfo(
                plugin,
                name,
                fingerprint,
                previous.created_at if previous else now,
                now,
                actor,
                previous.last_used_at if previous else None,
            )
            self._values[(plugin, name)] = bytes(value)
            self._infos[(plugin, name)] = info
        return info

    def get(self, plugin: str, name: str) -> bytes:
        with self._lock:
            try:
                value = self._values[(plugin, name)]
            except KeyError:
                raise NotFoundError("secret", f"{plugin}/{name}") from None
            info = self._infos[(plugin, name)]
            self._infos[(plugin, name)] = SecretInfo(
                info.plugin,
                info.name,
                info.fingerprint,
                info.created_at,
                info.updated_at,
                info.updated_by,
                time.time(),
            )
            return value

    def delete(self, plugin: str, name: str) -> bool:
        with self._lock:
            self._infos.pop((plugin, name), None)
            return self._values.pop((plugin, name), None) is not None

    def list(self, plugin: str | None = None) -> builtins.list[SecretInfo]:
        with self._lock:
            return sorted(
                (i for i in self._infos.values() if plugin is None or i.plugin == plugin),
                key=lambda i: (i.plugin, i.name),
            )

    def purge(self, plugin: str) -> int:
        with self._lock:
            gone = [key for key in self._values if key[0] == plugin]
            for key in gone:
                del self._values[key]
                self._infos.pop(key, None)
        return len(gone)
