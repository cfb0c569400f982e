"""Where the runtime reads secret values: the host's store behind one small interface."""

from __future__ import annotations

import threading
from typing import Protocol

from plugport.errors import NotFoundError

__all__ = ["MemorySecrets", "SecretSource"]


class SecretSource(Protocol):
    """The host's secret values, per plugin. ``get`` raises :class:`NotFoundError` when the
    operator has not set ``name`` for ``plugin``."""

    def get(self, plugin: str, name: str) -> bytes: ...

    def purge(self, plugin: str) -> int: ...


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

    def purge(self, plugin: str) -> int:
        with self._lock:
            gone = [key for key in self._values if key[0] == plugin]
            for key in gone:
                del self._values[key]
        return len(gone)
