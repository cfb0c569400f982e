"""Which update an auto-update policy applies, decided without I/O: the newest version the
policy admits, never a pre-release, a yanked or an incompatible one, never one that adds a
permission (it waits for consent), never one that failed before (until a newer one appears);
and the permission diff in the words the update's consent uses."""

from __future__ import annotations

import itertools

import pytest

from plugport.host.consent import ConsentRequest
from plugport.host.service._update_rules import (
    NO_CHANGELOG,
    POLICIES,
    Offered,
    changelog_of,
    check_policy,
    decide,
    engines_admit,
    failure_kind,
    offered_from,
    permission_diff,
    update_kind,
)
from plugport.manifest import Permissions
from plugport.versions import parse_version

NET = ("network 'cdn.example.net'",)


def offers(*versions: str) -> list[Offered]:
    return [Offered(v) for v in versions]


def test_a_policy_is_one_of_three_words() -> None:
    assert POLICIES == ("none", "patch", "minor")
    for policy in POLICIES:
        assert check_policy(policy) == policy
    for bad in ("major", "", "PATCH", " patch", None, 1, ["patch"]):
        with pytest.raises(ValueError, match="none, patch, minor") as caught:
            check_policy(bad)
        assert repr(bad) in str(caught.value)


@pytest.mark.parametrize(
    ("current", "candidate", "kind"),
    [
        ("1.0.0", "1.0.1", "patch"),
        ("1.0.0", "1.0.0.post1", "patch"),
        ("1.0", "1.0.1", "patch"),
        ("1.1.0rc1", "1.1.0", "patch"),
        ("1.0.9", "1.1.0", "minor"),
        ("1", "1.1", "minor"),
        ("1.9.9", "2.0.0", "major"),
        ("0.1.0", "0.2.0", "minor"),
        ("1.0.0", "1!1.0.1", "major"),
    ],
)
def test_the_kind_of_an_update_is_the_first_release_number_that_moves(
    current: str, candidate: str, kind: str
) -> None:
    assert update_kind(current, candidate) == kind


def test_off_applies_nothing() -> None:
    decision = decide("1.0.0", offers("1.0.1", "1.1.0"), "none")
    assert (decision.state, decision.version) == ("off", None)
    assert not decision.held


def test_patch_takes_the_newest_patch_and_leaves_minor_and_major_to_the_operator() -> None:
    decision = decide("1.0.0", offers("1.0.1", "1.0.3", "1.0.2", "1.1.0", "2.0.0"), "patch")
    assert (decision.state, decision.version) == ("apply", "1.0.3")
    assert decision.reason == "1.0.0 -> 1.0.3 (patch policy)"

    only_minor = decide("1.0.3", offers("1.0.0", "1.0.3", "1.1.0", "1.2.0"), "patch")
    assert (only_minor.state, only_minor.version) == ("current", None)
    assert "1.2.0 is a minor update" in only_minor.reason
    assert "patch updates only" in only_minor.reason


def test_minor_takes_the_newest_of_the_same_major() -> None:
    decision = decide("1.0.0", offers("1.0.5", "1.3.0", "1.2.9", "2.0.0", "3.1.0"), "minor")
    assert (decision.state, decision.version) == ("apply", "1.3.0")
    nothing = decide("1.3.0", offers("2.0.0"), "minor")
    assert nothing.state == "current"
    assert "2.0.0 is a major update" in nothing.reason
    assert "minor and patch updates only" in nothing.reason


@pytest.mark.parametrize("pre", ["1.0.2rc1", "1.0.2a1", "1.0.2b3", "1.0.2.dev4", "1.1.0rc1"])
@pytest.mark.parametrize("policy", ["patch", "minor"])
def test_a_pre_release_is_never_applied(pre: str, policy: str) -> None:
    assert decide("1.0.0", offers(pre), policy).state == "current"  # type: ignore[arg-type]
    picked = decide("1.0.0", offers("1.0.1", pre), policy)  # type: ignore[arg-type]
    assert (picked.state, picked.version) == ("apply", "1.0.1")


def test_a_pre_release_host_moves_to_its_final_release() -> None:
    decision = decide("1.1.0rc1", offers("1.1.0", "1.1.0rc2"), "patch")
    assert (decision.state, decision.version) == ("apply", "1.1.0")


def test_yanked_incompatible_older_and_unreadable_versions_are_passed_over() -> None:
    offered = [
        Offered("1.0.4", yanked=True),
        Offered("1.0.3", compatible=False),
        Offered("not a version"),
        Offered("0.9.0"),
        Offered("1.0.0"),
        Offered("1.0.1"),
    ]
    decision = decide("1.0.0", offered, "patch")
    assert (decision.state, decision.version) == ("apply", "1.0.1")
    assert decide("1.0.0", offered[:5], "patch").state == "current"
    assert decide("1.0.0", [], "minor").reason == "no newer minor release than 1.0.0"


def test_a_version_that_adds_a_permission_waits_for_consent() -> None:
    decision = decide("1.0.0", [Offered("1.0.1", adds=NET)], "patch")
    assert (decision.state, decision.version) == ("consent", "1.0.1")
    assert decision.held
    assert decision.reason == "waiting for your consent: 1.0.1 adds network 'cdn.example.net'"
    # The newest admitted version decides: an older, harmless one is not applied in its place.
    both = decide("1.0.0", [Offered("1.0.1"), Offered("1.0.2", adds=NET)], "patch")
    assert (both.state, both.version) == ("consent", "1.0.2")


def test_a_failed_version_is_held_until_a_newer_one_appears() -> None:
    failed = {"1.0.1": "the health check failed"}
    held = decide("1.0.0", offers("1.0.1"), "patch", failed)
    assert (held.state, held.version) == ("failed", "1.0.1")
    assert held.held
    assert held.reason.startswith(
        "auto-update to 1.0.1 failed, rolled back: the health check failed"
    )
    assert "not retried until a newer version appears" in held.reason
    # another spelling of the same version is the same version
    assert decide("1.0.0", offers("1.0.1.0"), "patch", failed).state == "failed"
    newer = decide("1.0.0", offers("1.0.1", "1.0.2"), "patch", failed)
    assert (newer.state, newer.version) == ("apply", "1.0.2")
    # a remembered failure with a version that does not parse is ignored, not an error
    assert decide("1.0.0", offers("1.0.2"), "patch", {"x y": "?"}).state == "apply"


def test_no_combination_applies_a_version_the_rules_forbid() -> None:
    """Every decision over a grid of offers: what is applied is newer, stable, compatible,
    not yanked, within the policy, adds nothing and never failed before."""
    versions = ["0.9.0", "1.0.0", "1.0.1", "1.0.2rc1", "1.1.0", "2.0.0", "1.0.1.post1"]
    flags = [(False, False, False), (True, False, False), (False, True, False)]
    failed = {"1.1.0": "broke"}
    seen: dict[str, int] = {}
    for picked in itertools.combinations(versions, 3):
        for marks in itertools.product(flags, repeat=3):
            offered = [
                Offered(v, adds=NET if add else (), yanked=yank, compatible=not broken)
                for v, (add, yank, broken) in zip(picked, marks, strict=True)
            ]
            for policy in POLICIES:
                decision = decide("1.0.0", offered, policy, failed)
                seen[decision.state] = seen.get(decision.state, 0) + 1
                if decision.state != "apply":
                    assert decision.state in ("off", "current", "consent", "failed")
                    continue
                [chosen] = [o for o in offered if o.version == decision.version]
                version = parse_version(chosen.version)
                assert version > parse_version("1.0.0")
                assert not version.is_prerelease
                assert not chosen.adds
                assert not chosen.yanked
                assert chosen.compatible
                assert chosen.version not in failed
                allowed = {"patch": ("patch",), "minor": ("patch", "minor")}[policy]
                assert update_kind("1.0.0", version) in allowed
    assert set(seen) == {"off", "current", "apply", "consent", "failed"}, seen


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("consent_required", "consent"),
        ("offline", "transient"),
        ("registry_error", "transient"),
        ("sandbox_unavailable", "transient"),
        ("not_found", "transient"),
        ("plugin_failed", "failed"),
        ("unresolvable", "failed"),
        ("bad_signature", "failed"),
        ("internal", "failed"),
        ("something new", "failed"),
    ],
)
def test_what_a_failed_automatic_update_means_for_its_version(code: str, kind: str) -> None:
    assert failure_kind(code) == kind


def test_the_permission_diff_speaks_as_the_update_consent_does() -> None:
    granted = Permissions.model_validate({"network": ["api.example.com"], "storage": "1 MiB"})
    offered = Permissions.model_validate(
        {
            "network": ["api.example.com", "cdn.example.net"],
            "credentials": {"jira": ["api.example.com"]},
            "secrets": {"reveal": ["jira"]},
        }
    )
    diff = permission_diff("acme.x", "1.0.0", "1.1.0", granted, offered)
    consent = ConsentRequest("acme.x", "1.1.0", "1.0.0", offered, granted)
    assert [p["line"] for p in diff["added"]] == consent.added  # exactly what is granted
    assert diff["added"] == [
        {"line": "network 'cdn.example.net'", "dangerous": False},
        {"line": "credential 'jira' sent to 'api.example.com'", "dangerous": False},
        {"line": "secrets.reveal 'jira'", "dangerous": True},
    ]
    assert diff["removed"] == [{"line": "storage 1048576 > 0 bytes", "dangerous": False}]
    assert [p["line"] for p in diff["lines"]] == consent.lines
    assert [p["dangerous"] for p in diff["lines"]] == [False, False, True]
    same = permission_diff("acme.x", "1.0.0", "1.0.1", granted, granted)
    assert (same["added"], same["removed"]) == ([], [])


def test_engines_admit_this_host_only_when_every_known_range_holds() -> None:
    env = {"plugport": "0.5.0", "myapp": "2.4.0"}
    assert engines_admit({}, env)
    assert engines_admit({"myapp": ">=2,<3", "plugport": "*"}, env)
    assert engines_admit({"otherapp": "<0.1"}, env)  # not this host's: constrains nothing
    assert not engines_admit({"myapp": "<2"}, env)
    assert not engines_admit({"plugport": ">=9"}, env)
    assert not engines_admit({"myapp": "not a range"}, env)
    assert not engines_admit({"myapp": 2}, env)


def test_a_registry_record_is_weighed_against_the_grants_and_the_host() -> None:
    granted = Permissions.model_validate({"network": ["api.example.com"]})
    env = {"plugport": "0.5.0", "myapp": "2.4.0"}
    row = {
        "version": "1.0.1",
        "yanked": False,
        "permissions": {"network": ["api.example.com", "cdn.example.net"]},
        "engines": {"myapp": ">=2"},
    }
    assert offered_from(row, granted, env) == Offered("1.0.1", adds=NET)
    assert offered_from(row | {"yanked": True}, granted, env).yanked
    assert not offered_from(row | {"engines": {"myapp": ">=3"}}, granted, env).compatible
    unknown = offered_from(row | {"permissions": {"teleport": ["x"]}}, granted, env)
    assert unknown == Offered("1.0.1", compatible=False)
    bare = offered_from({"version": "1.0.2"}, granted, env)
    assert bare == Offered("1.0.2")


def test_release_notes_come_from_the_record_or_the_page_says_there_are_none() -> None:
    assert changelog_of({"version": "1.0.1", "permissions": {}}) is None
    assert changelog_of({"description": "  Fixes the greeting.\n"}) == "Fixes the greeting."
    assert changelog_of({"changelog": "New: x", "description": "A plugin."}) == "New: x"
    assert changelog_of({"changelog": "   ", "notes": "n"}) == "n"
    assert changelog_of({"changelog": ["not", "text"]}) is None
    assert NO_CHANGELOG == "The registry gives no changelog for this version"
