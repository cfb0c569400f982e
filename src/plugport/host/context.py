"""Who an operation on a :class:`~plugport.host.PluginHost` is for: the actor its audit rows
name, how the operator's consent is asked, and where download progress goes. Passed per call
(``context=``), so one host serves several callers at once (the host service's tokens, each
request its own) without anyone changing the host's attributes under another's feet; the
host's constructor arguments are only the default."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from plugport.host.consent import Consent, refuse_growth

__all__ = ["OperationContext", "Progress"]

Progress = Callable[[str, int, int], None]
"""``(what, done, total)`` while an archive downloads."""


@dataclass(frozen=True)
class OperationContext:
    actor: str
    """Named in every audit row the operation writes (install, consent, verify, rollback …)."""
    consent: Consent = refuse_growth
    """Asked once per plugin whose permissions need consent; True grants what it requests."""
    progress: Progress | None = None
