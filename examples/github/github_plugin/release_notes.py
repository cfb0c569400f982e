"""Release notes from merged pull requests: which ones fall in the window, which section each
goes to (by label, first matching section wins, the rest under "Other"), and the markdown.
Pure: the plugin pages through closed pull requests (most recently updated first) and hands
each page in; :func:`page_is_past` tells it when to stop, since a pull request cannot have been
merged after its last update.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_SECTIONS",
    "OTHER",
    "merged_in_window",
    "page_is_past",
    "parse_moment",
    "release_notes",
]

OTHER = "Other"
DEFAULT_SECTIONS: tuple[dict[str, Any], ...] = (
    {"title": "Features", "labels": ["feature", "enhancement"]},
    {"title": "Fixes", "labels": ["bug", "fix", "bugfix"]},
    {"title": "Docs", "labels": ["documentation", "docs"]},
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")


def parse_moment(text: str) -> datetime | None:
    """An ISO date (``2025-01-31``, midnight UTC) or date-time (``...T12:00:00Z``, naive means
    UTC) as an aware datetime; None when ``text`` is not one (then it is a tag). ValueError for
    something shaped like a date that is not one (``2025-02-30``)."""
    if not _DATE.match(text):
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(pull: Mapping[str, Any], field: str) -> datetime | None:
    value = pull.get(field)
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def merged_in_window(
    pulls: Iterable[Mapping[str, Any]], since: datetime, until: datetime | None
) -> list[Mapping[str, Any]]:
    """The merged pull requests (``merged_at`` set: closed without merging is left out) with
    ``since < merged_at <= until``."""
    kept = []
    for pull in pulls:
        merged = _when(pull, "merged_at")
        if merged is not None and merged > since and (until is None or merged <= until):
            kept.append(pull)
    return kept


def page_is_past(page: Sequence[Mapping[str, Any]], since: datetime) -> bool:
    """Whether a page sorted by ``updated_at`` descending reached pull requests last updated
    before ``since``: nothing after it can have been merged in the window."""
    if not page:
        return True
    last = _when(page[-1], "updated_at")
    return last is not None and last <= since


def _section(labels: Sequence[str], sections: Sequence[Mapping[str, Any]]) -> str:
    for section in sections:
        if set(section["labels"]) & set(labels):
            return str(section["title"])
    return OTHER


def release_notes(
    repo: str,
    pulls: Iterable[Mapping[str, Any]],
    *,
    title: str,
    sections: Sequence[Mapping[str, Any]] = DEFAULT_SECTIONS,
) -> dict[str, Any]:
    """``{count, sections: [{title, items: [{number, title, url, author}]}], markdown}``:
    sections in the configured order with "Other" last, empty ones left out, pull requests
    oldest merge first within each."""
    ordered = sorted(pulls, key=lambda p: (str(p.get("merged_at")), int(p["number"])))
    grouped: dict[str, list[dict[str, Any]]] = {}
    for pull in ordered:
        labels = [str(x.get("name")) for x in pull.get("labels") or [] if isinstance(x, Mapping)]
        user = pull.get("user")
        login = user.get("login", "") if isinstance(user, Mapping) else ""
        grouped.setdefault(_section(labels, sections), []).append(
            {
                "number": int(pull["number"]),
                "title": str(pull["title"]),
                "url": str(pull.get("html_url", "")),
                "author": str(login),
            }
        )
    names = [str(s["title"]) for s in sections] + [OTHER]
    result = [{"title": name, "items": grouped[name]} for name in names if name in grouped]
    lines = [f"## {title}", ""]
    if not result:
        lines.append(f"No pull requests were merged in {repo} in this window.")
    for section in result:
        lines += [f"### {section['title']}", ""]
        lines += [
            f"- {item['title']} (#{item['number']}"
            + (f", @{item['author']})" if item["author"] else ")")
            for item in section["items"]
        ]
        lines.append("")
    count = sum(len(s["items"]) for s in result)
    return {"count": count, "sections": result, "markdown": "\n".join(lines).rstrip() + "\n"}
