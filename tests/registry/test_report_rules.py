"""The pure rules of abuse reports: the form's checks (each naming its field), the hourly
budget per identity, and what an admin may decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plugport._api_errors import RateLimitedError
from plugport.errors import InvalidInputError
from plugport.registry._report_rules import (
    MAX_TEXT_CHARS,
    ReportInput,
    check_decision,
    check_report,
    report_budget,
    target_key,
)

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def test_a_report_is_trimmed_and_keeps_only_its_kinds_fields() -> None:
    assert check_report("version", " acme.x ", " 1.0 ", None, "broken", "  fails  ") == (
        ReportInput("version", "acme.x", "1.0", None, "broken", "fails")
    )
    assert check_report("review", "acme.x", None, "Robin", "spam", None).author == "Robin"
    assert check_report("plugin", "acme.x", None, None, "other", "x" * MAX_TEXT_CHARS).text


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("plugins", "acme.x", None, None, "spam", ""), "kind"),
        (("plugin", 7, None, None, "spam", ""), "plugin"),
        (("version", "acme.x", "", None, "spam", ""), "version"),
        (("review", "acme.x", None, " ", "spam", ""), "author"),
        (("plugin", "acme.x", None, "Robin", "spam", ""), "author"),
        (("plugin", "acme.x", None, None, None, ""), "reason"),
        (("plugin", "acme.x", None, None, "spam", ["x"]), "text"),
        (("plugin", "acme.x", None, None, "other", "   "), "text"),
        (("plugin", "acme.x", None, None, "spam", "x" * (MAX_TEXT_CHARS + 1)), "text"),
    ],
)
def test_each_refusal_names_its_field(args: tuple[object, ...], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_report(*args)
    assert caught.value.field == field  # type: ignore[attr-defined]
    assert str(caught.value).startswith(f"{field}: ")


def test_the_hourly_budget_and_when_to_retry() -> None:
    filed = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=10)]
    assert report_budget(filed, 3, now=NOW) is None
    refused = report_budget(filed, 2, now=NOW)
    assert isinstance(refused, RateLimitedError)
    assert (refused.limit, refused.maximum) == ("report_limit_per_hour", 2)
    assert refused.retry_after_s == 10 * 60 + 1  # when the oldest leaves the window
    old = [NOW - timedelta(hours=2)] * 5  # outside the window: they do not count
    assert report_budget(old, 1, now=NOW) is None


def test_decisions() -> None:
    assert check_decision("quarantined", " bad ", kind="version") == ("quarantined", "bad")
    for decision, note, kind, field in (
        ("quarantined", "x", "plugin", "decision"),
        ("maybe", "x", "plugin", "decision"),
        ("dismissed", "", "plugin", "note"),
    ):
        with pytest.raises(InvalidInputError) as caught:
            check_decision(decision, note, kind=kind)
        assert caught.value.field == field  # type: ignore[attr-defined]


def test_one_target_one_key() -> None:
    assert target_key("version", "acme.x", "1.0", None) == "version:acme.x==1.0"
    assert target_key("review", "acme.x", None, "rob") != target_key("plugin", "acme.x", None, None)
