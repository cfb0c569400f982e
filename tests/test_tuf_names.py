"""The Plugport facts in a TUF target's ``custom`` field: what hosts of every age read. A
target that is not quarantined carries exactly ``{key_id, yanked}`` (what hosts before
quarantine accept); a quarantined one adds ``quarantined: true``, which those hosts refuse (the
registry wants them to) and newer hosts read."""

from __future__ import annotations

from typing import Any

import pytest

from plugport._tuf_names import CUSTOM_KEY, TargetFacts, target_facts

KEY = "ab" * 32


def test_facts_round_trip_and_stay_as_before_unless_quarantined() -> None:
    plain = TargetFacts(KEY, yanked=True)
    assert plain.custom() == {CUSTOM_KEY: {"key_id": KEY, "yanked": True}}
    assert target_facts(plain.custom()) == plain
    flagged = TargetFacts(KEY, yanked=False, quarantined=True)
    assert flagged.custom() == {CUSTOM_KEY: {"key_id": KEY, "yanked": False, "quarantined": True}}
    assert target_facts(flagged.custom()) == flagged


def _before_quarantine(custom: object) -> bool:
    """What a host before quarantine accepted: exactly {key_id, yanked}."""
    facts = custom.get(CUSTOM_KEY) if isinstance(custom, dict) else None
    return isinstance(facts, dict) and set(facts) == {"key_id", "yanked"}


def test_hosts_before_quarantine_read_plain_facts_and_refuse_quarantined_ones() -> None:
    assert _before_quarantine(TargetFacts(KEY, yanked=False).custom())
    assert not _before_quarantine(TargetFacts(KEY, yanked=False, quarantined=True).custom())


@pytest.mark.parametrize(
    "facts",
    [
        {"key_id": KEY, "yanked": False, "quarantined": False},  # written only when true
        {"key_id": KEY, "yanked": False, "quarantined": "yes"},
        {"key_id": KEY, "yanked": False, "quarantined": True, "other": 1},
        {"key_id": KEY},
        {"key_id": "nope", "yanked": False},
    ],
)
def test_malformed_facts_are_refused(facts: dict[str, Any]) -> None:
    assert target_facts({CUSTOM_KEY: facts}) is None
