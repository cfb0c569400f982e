"""The notify.* convention's one definition: what a producer publishes is what a notifier
reads back, and a payload a notifier cannot post (no title) is dropped, never half-posted."""

from __future__ import annotations

from plugport.sdk.notify import SEVERITIES, Notification, parse_notification


def test_a_published_notification_reads_back_the_same() -> None:
    sent = Notification(
        "PR #12 opened", "github", "3 commits", "https://github.com/a/b/pull/12", "success",
        {"Author": "ada"},
    )  # fmt: skip
    assert parse_notification(sent.payload()) == sent


def test_what_cannot_be_posted_is_dropped_or_read_safely() -> None:
    assert parse_notification({"text": "no title"}) is None
    assert parse_notification({"title": "   "}) is None
    assert parse_notification(["title"]) is None
    note = parse_notification(
        {"title": " x ", "severity": "catastrophic", "url": 7, "fields": {"a": 1, "": "b"}}
    )
    assert note == Notification("x", severity="info", fields={"a": "1"})
    assert Notification("x", severity="odd").payload()["severity"] == "info"
    assert SEVERITIES == ("info", "success", "warning", "error")
