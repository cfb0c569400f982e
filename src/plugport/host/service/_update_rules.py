"""Which update an operator's auto-update policy lets the host apply on its own, decided from
data alone: the installed version, the versions a registry offers (with what each would add to
the plugin's grants), the policy and the versions that failed before.

Rule: an automatic update never grants a permission. A version that asks for anything the
operator has not granted is held, waiting for the operator's consent; pre-releases, yanked and
incompatible versions are never applied on their own; a version whose automatic update failed
(and was rolled back) is not tried again until a newer one appears."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from packaging.version import Version

from plugport._permissions import describe_permissions, is_dangerous, permissions_beyond
from plugport.host.consent import ConsentRequest
from plugport.manifest import Permissions
from plugport.versions import ANY, is_compatible, parse_version

__all__ = [
    "AUTO_UPDATE_ACTOR",
    "NO_CHANGELOG",
    "POLICIES",
    "POLICY_LABELS",
    "POLICY_WORDS",
    "Decision",
    "Offered",
    "Policy",
    "changelog_of",
    "check_policy",
    "decide",
    "engines_admit",
    "failure_kind",
    "offered_from",
    "permission_diff",
    "update_kind",
]

Policy = Literal["none", "patch", "minor"]
POLICIES: tuple[Policy, ...] = get_args(Policy)
POLICY_WORDS: Mapping[str, str] = {
    "none": "off: every update waits for you",
    "patch": "patch updates (1.2.x) on their own",
    "minor": "minor and patch updates (1.x) on their own",
}
POLICY_LABELS: Mapping[str, str] = {
    "none": "none (off)",
    "patch": "patch (1.2.x)",
    "minor": "minor (1.x)",
}
"""Short names for a form's choices."""
AUTO_UPDATE_ACTOR = "auto-update"
"""Who the audit trail says made an automatic update."""
NO_CHANGELOG = "The registry gives no changelog for this version"
CHANGELOG_FIELDS = ("changelog", "notes", "description")
"""Where a registry's version record may carry its release notes, first found wins (today's
registry sends none of them: the page says so)."""

_RANK = {"patch": 0, "minor": 1, "major": 2}
_ADMITS = {"patch": "patch updates", "minor": "minor and patch updates"}
_TRANSIENT = frozenset(
    {
        "offline",
        "registry_error",
        "secrets_backend_unavailable",
        "sandbox_unavailable",
        "not_found",
        "conflict",
    }
)
"""Operation errors that say nothing about the version (the registry or the machine was not
ready, the plugin went away): the next check tries again. Any other error marks the version
failed, so a broken release is not installed and rolled back every hour."""

DecisionState = Literal["off", "current", "apply", "consent", "failed"]


def check_policy(value: object) -> Policy:
    """``value`` as a policy, or a :class:`ValueError` listing the ones there are."""
    for policy in POLICIES:
        if value == policy:
            return policy
    raise ValueError(f"{value!r} is not a policy; use one of {', '.join(POLICIES)}")


@dataclass(frozen=True)
class Offered:
    """One published version as the registry describes it, judged against this host."""

    version: str
    adds: tuple[str, ...] = ()
    """What it asks for beyond the installed version's grants (the permission diff)."""
    yanked: bool = False
    compatible: bool = True
    """Its engine ranges admit this host (and its permissions are ones the host knows)."""


@dataclass(frozen=True)
class Decision:
    """``apply``: update to ``version``; ``consent`` and ``failed``: ``version`` is held;
    ``current`` and ``off``: nothing to do. ``reason`` says why in plain words."""

    state: DecisionState
    version: str | None
    reason: str

    @property
    def held(self) -> bool:
        return self.state in ("consent", "failed")


def update_kind(current: str | Version, candidate: str | Version) -> str:
    """``major``, ``minor`` or ``patch``: the first release number that differs (a different
    epoch counts as major)."""
    old, new = _parsed(current), _parsed(candidate)
    if old.epoch != new.epoch:
        return "major"
    a, b = _release(old), _release(new)
    if a[0] != b[0]:
        return "major"
    if a[1] != b[1]:
        return "minor"
    return "patch"


def decide(
    current: str,
    offered: Sequence[Offered],
    policy: Policy,
    failed: Mapping[str, str] | None = None,
) -> Decision:
    """What the host may do on its own for a plugin at ``current``: the newest version the
    policy admits (never a pre-release, a yanked or an incompatible one), unless it needs
    consent or failed before (``failed``: version -> why its automatic update rolled back).
    Only the newest admitted version is considered: an older one is never applied in its
    place, so what the host does is what the page says it waits for."""
    if policy == "none":
        return Decision("off", None, "auto-update is off: every update waits for you")
    installed = _parsed(current)
    admitted: list[tuple[Version, Offered]] = []
    outside: list[Version] = []
    for item in offered:
        try:
            version = _parsed(item.version)
        except ValueError:
            continue
        if version <= installed or item.yanked or not item.compatible or version.is_prerelease:
            continue
        if _RANK[update_kind(installed, version)] <= _RANK[policy]:
            admitted.append((version, item))
        else:
            outside.append(version)
    if not admitted:
        if outside:
            newest = max(outside)
            return Decision(
                "current",
                None,
                f"{newest} is a {update_kind(installed, newest)} update; the {policy} policy "
                f"applies {_ADMITS[policy]} only: update it yourself",
            )
        return Decision("current", None, f"no newer {policy} release than {current}")
    version, best = max(admitted, key=lambda pair: pair[0])
    failures = {_parsed(v): why for v, why in (failed or {}).items() if _valid(v)}
    if version in failures:
        return Decision(
            "failed",
            best.version,
            f"auto-update to {best.version} failed, rolled back: {failures[version]}; it is "
            "not retried until a newer version appears",
        )
    if best.adds:
        return Decision(
            "consent",
            best.version,
            f"waiting for your consent: {best.version} adds {'; '.join(best.adds)}",
        )
    return Decision("apply", best.version, f"{current} -> {best.version} ({policy} policy)")


def failure_kind(code: str) -> Literal["consent", "transient", "failed"]:
    """What an automatic update that ended with error ``code`` means for its version:
    ``consent`` (it needs the operator after all), ``transient`` (try again at the next
    check) or ``failed`` (held until a newer version appears)."""
    if code == "consent_required":
        return "consent"
    return "transient" if code in _TRANSIENT else "failed"


def permission_diff(
    name: str, current: str, version: str, granted: Permissions, offered: Permissions
) -> dict[str, list[dict[str, Any]]]:
    """What updating ``name`` from ``current`` (granted ``granted``) to ``version`` changes:
    ``added`` in the words the update's consent asks for (exactly what the operator grants),
    ``removed``, and ``lines``: everything the new version may do, as the install page shows
    it. Each line says whether it is one every screen shows in red."""
    request = ConsentRequest(name, version, current, offered, granted)
    return {
        "added": _flagged(request.added),
        "removed": _flagged(permissions_beyond(offered, granted)),
        "lines": _flagged(describe_permissions(offered)),
    }


def changelog_of(row: Mapping[str, Any]) -> str | None:
    """The release notes a registry's version record carries, or ``None`` (show
    :data:`NO_CHANGELOG`)."""
    for field in CHANGELOG_FIELDS:
        value = row.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def engines_admit(engines: Mapping[str, Any], environment: Mapping[str, str]) -> bool:
    """Whether a version's engine ranges admit this host: ``environment`` names Plugport and
    the application with their versions; a range on anything else constrains nothing (as the
    resolver decides), and a range that does not parse admits nothing."""
    for engine, version in environment.items():
        spec = engines.get(engine, ANY)
        try:
            if not isinstance(spec, str) or not is_compatible(version, spec):
                return False
        except ValueError:
            return False
    return True


def offered_from(
    row: Mapping[str, Any], granted: Permissions, environment: Mapping[str, str]
) -> Offered:
    """A registry's version record as :func:`decide` weighs it against the installed grants
    and this host. Permissions this host cannot read make the version incompatible."""
    version = str(row.get("version", ""))
    try:
        wanted = Permissions.model_validate(row.get("permissions") or {})
    except ValueError:  # pydantic's ValidationError is one
        return Offered(version, compatible=False)
    return Offered(
        version,
        adds=tuple(permissions_beyond(granted, wanted)),
        yanked=bool(row.get("yanked")),
        compatible=engines_admit(row.get("engines") or {}, environment),
    )


def _flagged(lines: Sequence[str]) -> list[dict[str, Any]]:
    return [{"line": line, "dangerous": is_dangerous(line)} for line in lines]


def _parsed(version: str | Version) -> Version:
    return version if isinstance(version, Version) else parse_version(version)


def _valid(version: str) -> bool:
    try:
        parse_version(version)
    except ValueError:
        return False
    return True


def _release(version: Version) -> tuple[int, int, int]:
    padded = (*version.release, 0, 0)
    return padded[0], padded[1], padded[2]
