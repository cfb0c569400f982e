"""The secrets fake: the values a test gives, in the runtime's own secret source, used by the
real ``secrets`` capability and the real credential injection in ``net.fetch``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugport.errors import InvalidInputError
from plugport.runtime.capabilities._secret_source import MemorySecrets

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeSecrets"]


class FakeSecrets:
    """One plugin's secrets as an operator would set them (``plugport secret set``)."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self._declared = set(grants.credential_kinds)
        source = runtime.services.secrets
        if not isinstance(source, MemorySecrets):
            raise InvalidInputError("the secrets fake needs a runtime with in-memory secrets")
        self._source = source

    def set(self, name: str, value: str | bytes) -> None:
        """Give the plugin's credential ``name`` a value (a test's stand-in, never a real
        secret); ``name`` must be a ``[credentials.NAME]`` of the manifest."""
        if name not in self._declared:
            raise InvalidInputError(
                f"{self.plugin} declares no [credentials.{name}] "
                f"(declared: {', '.join(sorted(self._declared)) or 'none'})"
            )
        self._source.set(self.plugin, name, value.encode() if isinstance(value, str) else value)

    def close(self) -> None:
        self._source.purge(self.plugin)
