"""Why a registry no longer offers what the operator asked for, decided without I/O.

A registry withdraws a version whose signing key its publisher revoked: it leaves the signed
index and the versions a host resolves from, so an exact pin to it (or a plugin every version
of which is withdrawn) fails to resolve as if it had never existed. The rule this protects: such
a failure names the revoked key and when it was revoked, from the plugin's own listing (the
registry's ``GET /plugins/{name}``, where withdrawn versions stay, each with ``key_id`` and
``key_revoked_at``), and only when withdrawal is the whole reason: if anything offered still
matches the requirement, the resolver's own explanation stands.

A registry's admin may also quarantine a version: it leaves the signed index and the versions a
host resolves from just the same (so even an exact pin fails), and the plugin's listing says so
(``quarantined``, ``quarantine_reason``). The same rule holds: the refusal names the quarantine
only when it is the whole reason; and a host with such a version installed is told at its update
check (:func:`installed_quarantine`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from packaging.version import InvalidVersion, Version

from plugport.host.candidates import Requirement, specifier_set

__all__ = ["installed_quarantine", "quarantined_refusal", "withdrawn_refusal"]


def _matches(requirement: Requirement, version: str) -> bool:
    try:
        parsed = Version(version)
    except InvalidVersion:
        return False
    return specifier_set(requirement.specifier).contains(parsed, prereleases=True)


def withdrawn_refusal(
    requirement: Requirement, versions: Sequence[Mapping[str, Any]]
) -> str | None:
    """The message for a requirement that only withdrawn versions meet, naming the newest one's
    revoked key (its first 16 hex digits, as everywhere) and the revocation time; None when some
    version the registry still offers meets it, or none withdrawn does."""
    matching = [v for v in versions if _matches(requirement, str(v.get("version", "")))]
    withdrawn = [v for v in matching if v.get("withdrawn") and v.get("key_id")]
    if not withdrawn or len(withdrawn) != len(matching):
        return None
    newest = max(withdrawn, key=lambda v: Version(str(v["version"])))
    namespace = requirement.name.split(".", 1)[0]
    others = len(withdrawn) - 1
    more = f" (and {others} more matching version{'s' if others > 1 else ''})" if others else ""
    return (
        f"{requirement.name} {newest['version']} is signed by {namespace}'s key "
        f"{str(newest['key_id'])[:16]}…, which its publisher revoked at "
        f"{newest.get('key_revoked_at') or 'an unknown time'}{more}: the registry withdrew it, "
        f"so it cannot be installed; nothing was installed"
    )


def quarantined_refusal(
    requirement: Requirement, versions: Sequence[Mapping[str, Any]]
) -> str | None:
    """The message for a requirement that only quarantined (or withdrawn) versions meet,
    naming the newest quarantined one and the registry's reason; None when some version the
    registry still offers meets it, or none quarantined does."""
    matching = [v for v in versions if _matches(requirement, str(v.get("version", "")))]
    quarantined = [v for v in matching if v.get("quarantined")]
    offered = [v for v in matching if not v.get("quarantined") and not v.get("withdrawn")]
    if not quarantined or offered:
        return None
    newest = max(quarantined, key=lambda v: Version(str(v["version"])))
    reason = str(newest.get("quarantine_reason") or "no reason given")
    others = len(quarantined) - 1
    more = f" (and {others} more matching version{'s' if others > 1 else ''})" if others else ""
    return (
        f"{requirement.name} {newest['version']} is quarantined by the registry ({reason})"
        f"{more}: it is refused even when pinned; nothing was installed"
    )


def installed_quarantine(version: str, versions: object) -> str | None:
    """The registry's reason (possibly empty) when the plugin's listing ``versions`` says the
    installed ``version`` is quarantined; None when it does not."""
    if not isinstance(versions, list):
        return None
    for row in versions:
        if isinstance(row, Mapping) and row.get("version") == version and row.get("quarantined"):
            return str(row.get("quarantine_reason") or "")
    return None
