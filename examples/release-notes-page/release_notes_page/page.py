"""The page's component trees, built without I/O: three tabs (the latest release, the history,
the form to record one) and the side panel a release opens in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from release_notes_page.releases import MAX_NOTES_CHARS, MAX_TITLE_CHARS, Release

__all__ = ["ADD", "OPEN", "REMOVE", "WHATS_NEW", "page", "panel"]

ADD = "add"
OPEN = "open"
REMOVE = "remove"
WHATS_NEW = "whats-new"
PAGE_SIZE = 10


def page(
    releases: Sequence[Release],
    *,
    notice: tuple[str, str] | None = None,
    error: str = "",
    error_field: str = "",
    typed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole page. ``notice``: a ``(level, text)`` alert above the tabs (what an action
    did); ``error``/``error_field``/``typed``: a refused release, shown in its form with what
    was typed."""
    children: list[Any] = []
    if notice is not None:
        children.append({"type": "alert", "level": notice[0], "text": notice[1]})
    children.append(
        {
            "type": "tabs",
            "tabs": [
                {"id": "overview", "label": "Overview", "children": _overview(releases)},
                {
                    "id": "history",
                    "label": f"History ({len(releases)})",
                    "children": _history(releases),
                },
                {
                    "id": "add",
                    "label": "Record a release",
                    "children": [_form(error, error_field, typed or {})],
                },
            ],
        }
    )
    return {"type": "stack", "children": children}


def panel(release: Release) -> dict[str, Any]:
    """One release in a side panel, with the button that removes it."""
    return {
        "type": "overlay",
        "kind": "panel",
        "title": f"{release.version}: {release.title}",
        "children": [
            {
                "type": "kv",
                "items": [
                    {"key": "Version", "value": release.version},
                    {"key": "Released", "value": release.date},
                ],
            },
            {"type": "markdown", "source": release.notes},
            {
                "type": "button",
                "label": "Remove this release",
                "style": "danger",
                "confirm": f"Remove {release.version} from the release notes?",
                "action": {"name": REMOVE, "payload": {"version": release.version}},
            },
        ],
    }


def _overview(releases: Sequence[Release]) -> list[Any]:
    if not releases:
        return [
            {
                "type": "alert",
                "level": "info",
                "title": "No release recorded yet",
                "text": "Record the first one under “Record a release”.",
            }
        ]
    latest = releases[0]
    return [
        {
            "type": "kv",
            "items": [
                {"key": "Latest version", "value": latest.version},
                {"key": "Released", "value": latest.date},
                {"key": "Title", "value": latest.title},
                {"key": "Releases recorded", "value": len(releases)},
            ],
        },
        {"type": "markdown", "source": latest.notes},
        {"type": "button", "label": "What's new", "action": {"name": WHATS_NEW}},
    ]


def _history(releases: Sequence[Release]) -> list[Any]:
    table = {
        "type": "table",
        "caption": "Every recorded release, newest version first",
        "columns": [
            {"key": "version", "label": "Version"},
            {"key": "date", "label": "Released"},
            {"key": "title", "label": "Title"},
        ],
        "rows": [{"version": r.version, "date": r.date, "title": r.title} for r in releases],
        "sortable": True,
        "page_size": PAGE_SIZE,
        "empty": "No releases yet.",
    }
    if not releases:
        return [table]
    chooser = {
        "type": "form",
        "fields": [
            {
                "name": "version",
                "label": "Release",
                "kind": "select",
                "required": True,
                "default": releases[0].version,
                "options": [
                    {"value": r.version, "label": f"{r.version} ({r.date})"} for r in releases
                ],
            }
        ],
        "submit": {"label": "Open its notes", "action": {"name": OPEN}},
    }
    return [table, chooser]


def _form(error: str, error_field: str, typed: Mapping[str, Any]) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [
        {
            "name": "version",
            "label": "Version",
            "kind": "text",
            "required": True,
            "placeholder": "1.4.0",
            "pattern": r"\d+\.\d+\.\d+(-[0-9A-Za-z.\-]+)?",
            "help": "Semantic version: MAJOR.MINOR.PATCH, optionally -rc.1 and the like.",
        },
        {"name": "date", "label": "Released on", "kind": "date", "required": True},
        {
            "name": "title",
            "label": "Title",
            "kind": "text",
            "required": True,
            "help": f"One line, at most {MAX_TITLE_CHARS} characters.",
        },
        {
            "name": "notes",
            "label": "Notes",
            "kind": "textarea",
            "required": True,
            "help": f"Markdown, at most {MAX_NOTES_CHARS} characters. HTML is shown as text.",
        },
    ]
    for field in fields:
        value = typed.get(field["name"])
        if isinstance(value, str) and value:
            field["default"] = value[:MAX_NOTES_CHARS]
        if error and field["name"] == error_field:
            field["error"] = error
    form: dict[str, Any] = {
        "type": "form",
        "fields": fields,
        "submit": {"label": "Record release", "action": {"name": ADD}},
    }
    if error:
        form["error"] = error
    return form
