"""Abuse reports, decided without I/O: what a report may say (a closed set of reasons, a
bounded free text, a target that is a plugin, a version or a review), how many one identity may
file in an hour, and what an admin may decide. Every refusal is an
:class:`~plugport.errors.InvalidInputError` whose ``field`` names the part to fix, so the API's
error details and the web form point at it; nothing is stored on a refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from plugport._api_errors import RateLimitedError
from plugport.errors import InvalidInputError

__all__ = [
    "DECISIONS",
    "KINDS",
    "MAX_NOTE_CHARS",
    "MAX_TEXT_CHARS",
    "REASONS",
    "WINDOW",
    "ReportInput",
    "check_decision",
    "check_report",
    "report_budget",
    "target_key",
]

REASONS = {
    "malware": "Malware or data theft",
    "impersonation": "Impersonates another publisher or product",
    "spam": "Spam or search manipulation",
    "offensive": "Offensive or abusive content",
    "broken": "Broken, or does not do what it says",
    "other": "Something else (say what)",
}
"""The closed set of reasons, with the words the report form shows."""
KINDS = ("plugin", "version", "review")
DECISIONS = {
    "dismissed": "No action: the report does not hold",
    "actioned": "Acted on (suspended, review removed, publisher contacted...)",
    "quarantined": "The reported version is quarantined",
    "removed": "The reported review is removed",
}
MAX_TEXT_CHARS = 2000
MAX_NOTE_CHARS = 2000
WINDOW = timedelta(hours=1)
"""The window of :func:`report_budget`: reports per identity per hour."""


def _refuse(field: str, message: str) -> InvalidInputError:
    error = InvalidInputError(f"{field}: {message}")
    error.field = field  # type: ignore[attr-defined]  # the API's error details name it
    return error


@dataclass(frozen=True)
class ReportInput:
    kind: str
    plugin: str
    version: str | None
    author: str | None
    """A review's author as the public sees it (display name or pseudonym)."""
    reason: str
    text: str


def check_report(  # noqa: PLR0917 one argument per field of the form
    kind: object,
    plugin: object,
    version: object,
    author: object,
    reason: object,
    text: object,
) -> ReportInput:
    """The report as it will be stored, or the first problem, naming its field: ``kind`` one
    of :data:`KINDS`; ``version`` exactly for a version, ``author`` exactly for a review;
    ``reason`` one of :data:`REASONS`; ``text`` at most :data:`MAX_TEXT_CHARS` characters,
    and needed when the reason is ``other``."""
    if kind not in KINDS:
        raise _refuse("kind", f"one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(plugin, str) or not plugin.strip():
        raise _refuse("plugin", "name the plugin")
    wanted_version = kind == "version"
    if wanted_version != (isinstance(version, str) and bool(version.strip())):
        said = "name the version" if wanted_version else "only a version report names one"
        raise _refuse("version", said)
    wanted_author = kind == "review"
    if wanted_author != (isinstance(author, str) and bool(author.strip())):
        said = "name the review's author" if wanted_author else "only a review report names one"
        raise _refuse("author", said)
    if reason not in REASONS:
        raise _refuse("reason", f"one of {', '.join(REASONS)}, not {reason!r}")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise _refuse("text", f"a string, not {type(text).__name__}")
    body = text.strip()
    if len(body) > MAX_TEXT_CHARS:
        raise _refuse("text", f"at most {MAX_TEXT_CHARS} characters, not {len(body)}")
    if reason == "other" and not body:
        raise _refuse("text", "say what is wrong when the reason is 'other'")
    return ReportInput(
        str(kind),
        plugin.strip(),
        version.strip() if isinstance(version, str) and wanted_version else None,
        author.strip() if isinstance(author, str) and wanted_author else None,
        str(reason),
        body,
    )


def target_key(kind: str, plugin: str, version: str | None, review_identity: str | None) -> str:
    """What "the same target" means for the one-open-report rule."""
    if kind == "version":
        return f"version:{plugin}=={version}"
    if kind == "review":
        return f"review:{plugin}:{review_identity}"
    return f"plugin:{plugin}"


def report_budget(filed: list[datetime], limit: int, *, now: datetime) -> RateLimitedError | None:
    """Whether one more report is allowed, given when this identity filed the reports of the
    last :data:`WINDOW` (``filed``); the refusal says when the oldest leaves the window."""
    recent = sorted(t for t in filed if now - t < WINDOW)
    if len(recent) < limit:
        return None
    retry = int((recent[0] + WINDOW - now).total_seconds()) + 1
    return RateLimitedError(
        "report_limit_per_hour",
        limit,
        max(1, retry),
        f"you have filed {len(recent)} reports in the last hour",
    )


def check_decision(decision: object, note: object, *, kind: str) -> tuple[str, str]:
    """An admin's resolution: a decision of :data:`DECISIONS` (``quarantined`` only for a
    version report, ``removed`` only for a review report) and a note (needed, at most
    :data:`MAX_NOTE_CHARS`): it is the audit record's reason."""
    if decision not in DECISIONS:
        raise _refuse("decision", f"one of {', '.join(DECISIONS)}, not {decision!r}")
    if decision == "quarantined" and kind != "version":
        raise _refuse("decision", f"only a version can be quarantined; this reports a {kind}")
    if decision == "removed" and kind != "review":
        raise _refuse("decision", f"only a review can be removed here; this reports a {kind}")
    if not isinstance(note, str) or not note.strip():
        raise _refuse("note", "say why; the reporter's case and the audit log keep it")
    if len(note.strip()) > MAX_NOTE_CHARS:
        raise _refuse("note", f"at most {MAX_NOTE_CHARS} characters")
    return str(decision), note.strip()
