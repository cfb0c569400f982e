"""What the registry's TUF targets say about a plugin archive, shared by the registry that
writes them and the host that reads them: the target path of a version, the delegated role of
a namespace, and the Plugport facts each target carries in its ``custom`` field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CUSTOM_KEY",
    "TargetFacts",
    "namespace_of_role",
    "namespace_role",
    "target_facts",
    "target_path",
]

CUSTOM_KEY = "plugport"
_ROLE_PREFIX = "ns."
_HEX = frozenset("0123456789abcdef")


def target_path(name: str, version: str) -> str:
    """``acme.hello/acme.hello-1.2.0.plugport``: one directory per plugin, so the namespace
    role's path pattern ``acme.*/*`` covers exactly that namespace's plugins."""
    return f"{name}/{name}-{version}.plugport"


def namespace_role(namespace: str) -> str:
    """The delegated targets role that lists a namespace's archives (``ns.acme``); never one
    of TUF's top-level names, whatever the namespace is called."""
    return f"{_ROLE_PREFIX}{namespace}"


def namespace_of_role(role: str) -> str | None:
    return role[len(_ROLE_PREFIX) :] if role.startswith(_ROLE_PREFIX) else None


@dataclass(frozen=True)
class TargetFacts:
    """What a target says beyond its length and hashes: the publisher key that signed the
    archive (checked end to end by the host, as with the v1 index), whether it is yanked, and
    whether the registry quarantined it (refused even pinned).

    ``quarantined`` is written only when true: every other target's facts stay exactly
    ``{key_id, yanked}``, byte for byte what hosts before quarantine read, while those hosts
    refuse a quarantined target (its facts are not the set they know), which is what the
    registry wants of them; newer hosts refuse it saying why, and flag it when installed."""

    key_id: str
    yanked: bool
    quarantined: bool = False

    def custom(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"key_id": self.key_id, "yanked": self.yanked}
        if self.quarantined:
            facts["quarantined"] = True
        return {CUSTOM_KEY: facts}


def target_facts(custom: object) -> TargetFacts | None:
    """The facts in a target's ``custom`` field, or None when they are missing or malformed
    (a host refuses such a target: it cannot tell which publisher key must have signed it)."""
    if not isinstance(custom, dict):
        return None
    facts = custom.get(CUSTOM_KEY)
    if not isinstance(facts, dict) or set(facts) - {"quarantined"} != {"key_id", "yanked"}:
        return None
    keyid, yanked = facts["key_id"], facts["yanked"]
    quarantined = facts.get("quarantined", False)
    if quarantined is not True and "quarantined" in facts:
        return None  # written only when true: anything else is not a fact the registry writes
    if not (isinstance(keyid, str) and len(keyid) == 64 and set(keyid) <= _HEX):
        return None
    if not isinstance(yanked, bool):
        return None
    return TargetFacts(keyid, yanked, quarantined)
