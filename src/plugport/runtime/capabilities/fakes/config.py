"""The config fake: settings given by the test, checked by the real schema check of the
plugin's manifest, stored where the plugin's ``config.get`` reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeConfig"]


class FakeConfig:
    """One plugin's settings as an operator would set them."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self._runtime = runtime
        self._schema = dict(grants.config_schema)

    def set(self, **values: Any) -> dict[str, Any]:
        """Add ``values`` to the settings set so far and return the effective settings. Invalid
        settings raise :class:`~plugport.errors.InvalidInputError` listing every problem
        (``config.<path>: <rule>``) and leave the settings as they were."""
        stored = self._runtime.services.settings.stored(self.plugin)
        return self._runtime.configure(self.plugin, stored | values)

    @property
    def values(self) -> dict[str, Any]:
        """What the plugin's ``config.get()`` returns now: defaults overlaid by what was set."""
        return self._runtime.services.settings.get(self.plugin, self._schema)

    def close(self) -> None:
        """Nothing to release: the settings live in the runtime's database."""
