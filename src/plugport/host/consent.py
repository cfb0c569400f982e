"""Permission consent, decided without I/O: what an install or update asks the operator for,
and whether a non-interactive run may go ahead (only when nothing grows beyond what was granted
before, or beyond what the host's policy pre-approves)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from plugport._permissions import describe_permissions, permissions_beyond
from plugport.manifest import Permissions

__all__ = ["Consent", "ConsentRequest", "accept_all", "needs_consent", "refuse_growth"]


@dataclass(frozen=True)
class ConsentRequest:
    name: str
    version: str
    previous_version: str | None
    requested: Permissions
    granted_before: Permissions | None
    """What the operator consented to for the installed version (None: a new install)."""
    verified_domain: str | None = None
    """The domain the registry says the plugin's namespace proved (its ``verified_domain``);
    None: not a verified publisher, or not from a registry. Shown, never decisive: consent
    is about permissions."""

    @property
    def publisher(self) -> str | None:
        """The line naming a verified publisher, shown before the permissions."""
        return f"verified publisher: {self.verified_domain}" if self.verified_domain else None

    @property
    def added(self) -> list[str]:
        """What this version may do that the installed one was not allowed to (the diff)."""
        before = self.granted_before if self.granted_before is not None else Permissions()
        return permissions_beyond(before, self.requested)

    @property
    def lines(self) -> list[str]:
        """The whole request in plain words, after the verified publisher if there is one."""
        publisher = [self.publisher] if self.publisher else []
        return publisher + describe_permissions(self.requested)


Consent = Callable[[ConsentRequest], bool]
"""Asked once per plugin whose permissions need consent; True grants what it requests."""


def needs_consent(request: ConsentRequest, preapproved: Permissions | None) -> bool:
    """Nothing to ask when every permission was granted before or is pre-approved by policy
    (an update that asks for nothing new; a plugin that asks for nothing at all)."""
    if not request.added:
        return False
    return preapproved is None or bool(permissions_beyond(preapproved, request.requested))


def accept_all(request: ConsentRequest) -> bool:
    """``--yes``: the operator accepted in advance."""
    return True


def refuse_growth(request: ConsentRequest) -> bool:
    """No one to ask (no terminal, no ``--yes``): refuse whatever needs consent."""
    return False
