"""The UI extensions a workspace's enabled plugins contribute, read from its runtime: the one
place pages learn which plugin pages, menu items and field types exist and are allowed (the
rules themselves are in :mod:`plugport.host.ui._extension_rules`). In memory, no plugin call:
cheap enough for every page's navigation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugport.errors import InvalidInputError
from plugport.host.ui._extension_rules import Contribution

if TYPE_CHECKING:
    from plugport.runtime.supervisor import Supervisor

__all__ = ["contributions"]


def contributions(supervisor: Supervisor) -> list[Contribution]:
    """Each added (enabled) plugin with its manifest and granted ``permissions.ui``."""
    found = []
    for name in supervisor.added():
        try:
            manifest = supervisor.manifest_of(name)
            granted = frozenset(supervisor.granted(name).ui)
        except InvalidInputError:  # removed while this read
            continue
        found.append(Contribution(name, manifest, granted))
    return found
