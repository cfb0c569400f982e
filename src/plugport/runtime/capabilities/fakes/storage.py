"""The storage fake: the real :class:`PluginStorage` on the test's runtime database (so keys,
values and the quota are checked exactly as in production), plus seeding and inspection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plugport.runtime.capabilities.storage import MAX_KEYS_LIMIT

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeStorage"]


class FakeStorage:
    """One plugin's entries in the runtime's real store."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self.quota_bytes = grants.permissions.storage
        self._storage = runtime.services.storage

    def seed(self, mapping: Mapping[str, Any]) -> int:
        """Store each entry as the plugin's own ``storage.set`` would, under its quota (so a
        seed the plugin could never hold is refused); returns the usage afterwards."""
        used = self.usage
        for key, value in mapping.items():
            used = self._storage.set(self.plugin, key, value, quota_bytes=self.quota_bytes)
        return used

    @property
    def data(self) -> dict[str, Any]:
        """Every entry the plugin holds, as plain data."""
        keys = self._storage.keys(self.plugin, "", limit=MAX_KEYS_LIMIT)
        return {key: self._storage.get(self.plugin, key) for key in keys}

    @property
    def usage(self) -> int:
        """Bytes held, counted as the quota counts them."""
        return self._storage.usage(self.plugin)

    def close(self) -> None:
        """Nothing to release: the entries live in the runtime's database."""
