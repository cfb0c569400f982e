"""Where the runtime reads secret values: the host's store behind one small interface."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

from plugport.errors import NotFoundError

__all__ = ["MemorySecrets", "RefreshingSource", "SecretSource"]


class SecretSource(Protocol):
    """The host's secret values, per plugin. ``get`` raises :class:`NotFoundError` when the
    operator has not set ``name`` for ``plugin``."""

    def get(self, plugin: str, name: str) -> bytes: ...

    def purge(self, plugin: str) -> int: ...


@runtime_checkable
class RefreshingSource(Protocol):
    """A source whose values expire (OAuth2 access tokens): ``net.fetch`` asks it for a fresh
    value before sending, and for a new one once when the target answered 401 to ``refused``."""

    async def current(self, plugin: str, name: str) -> bytes: ...

    async def refreshed(self, plugin: str, name: str, refused: bytes) -> bytes: ...


class MemorySecrets:
    """A :class:`SecretSource` in memory: ``plugport.testing`` and hosts without a store."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def set(self, plugin: str, name: str, value: bytes) -> None:
        with self._lock:
            self._values[(plugin, name)] = bytes(value)

    def get(self, plugin: str, name: str) -> bytes:
        with self._lock:
            try:
                return self._values[(plugin, name)]
            except KeyError:
                raise NotFoundError("secret", f"{plugin}/{name}") from None

    def delete(self, plugin: str, name: str) -> bool:
        with self._lock:
            return self._values.pop((plugin, name), None) is not None

    def purge(self, plugin: str) -> int:
        with self._lock:
            gone = [key for key in self._values if key[0] == plugin]
            for key in gone:
                del self._values[key]
        return len(gone)
