"""What the menu items show, decided without I/O: which context they answer (the host builds it
from the object the menu was opened on; anything else gets no overlay), a task type's runbook,
the rule for a note, and the overlays' component trees."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = [
    "FORGET",
    "MAX_NOTE_CHARS",
    "SAVE",
    "NoteError",
    "TaskTarget",
    "check_note",
    "marketplace_page",
    "note_key",
    "plugin_overlay",
    "plugin_target",
    "runbook_for",
    "task_overlay",
    "task_target",
]

SAVE = "save-note"
FORGET = "forget-note"
MAX_NOTE_CHARS = 500
MAX_ID_CHARS = 200
_TASK_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_PLUGIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class NoteError(ValueError):
    """A note the form refuses, said as the form shows it."""


@dataclass(frozen=True)
class TaskTarget:
    id: str
    type: str

    @property
    def family(self) -> str:
        """The service a task type belongs to by convention: ``GITHUB`` of ``GITHUB_PR_REVIEW``."""
        return self.type.split("_", 1)[0] if "_" in self.type else ""


def task_target(context: Mapping[str, Any]) -> TaskTarget | None:
    """The task a ``task`` menu was opened on, or ``None`` for any other context."""
    task, kind = context.get("task"), context.get("type")
    if context.get("menu") != "task" or not _plain(task) or not isinstance(kind, str):
        return None
    if not _TASK_TYPE.match(kind):
        return None
    return TaskTarget(str(task), kind)


def plugin_target(context: Mapping[str, Any]) -> str | None:
    """The plugin an ``installation`` menu was opened on, or ``None`` for any other context."""
    name = context.get("plugin")
    if context.get("menu") != "installation" or not isinstance(name, str):
        return None
    return name if _PLUGIN.match(name) else None


def runbook_for(task_type: str, runbooks: Mapping[str, str]) -> str | None:
    """The runbook of ``task_type``: its own entry, else the longest ``PREFIX*`` pattern that
    covers it (``*`` alone covers every type)."""
    if task_type in runbooks:
        return runbooks[task_type]
    covering = [p for p in runbooks if p.endswith("*") and task_type.startswith(p[:-1])]
    return runbooks[max(covering, key=len)] if covering else None


def note_key(target: TaskTarget) -> str:
    return f"note/{target.id}"


def check_note(value: Any) -> str:
    """The note to keep: text, trimmed, 1 to :data:`MAX_NOTE_CHARS` characters."""
    if not isinstance(value, str):
        raise NoteError("Write the note as text.")
    note = value.strip()
    if not note:
        raise NoteError("The note is empty: write what the team should know.")
    if len(note) > MAX_NOTE_CHARS:
        raise NoteError(f"The note is {len(note)} characters long; the most is {MAX_NOTE_CHARS}.")
    return note


def marketplace_page(marketplace_url: str, plugin: str) -> str | None:
    if not marketplace_url:
        return None
    return f"{marketplace_url.rstrip('/')}/plugins/{quote(plugin, safe='')}"


def task_overlay(
    target: TaskTarget,
    *,
    runbook: str | None,
    note: str | None,
    error: str = "",
    typed: str = "",
) -> dict[str, Any]:
    """The task's modal: what it is, its runbook, and the team's note on it (``error`` and
    ``typed``: a refused note, shown with what was typed so nothing is lost)."""
    children: list[Any] = [
        {
            "type": "kv",
            "items": [
                {"key": "Task", "value": target.id},
                {"key": "Type", "value": target.type},
                {"key": "Service", "value": target.family or "(no prefix)"},
                {"key": "Runbook", "value": runbook or "none configured for this type"},
            ],
        }
    ]
    if runbook:
        children.append(
            {"type": "link", "label": f"Open the {target.type} runbook", "href": runbook}
        )
    children.append({"type": "heading", "level": 3, "text": "Team note"})
    if note:
        children.append({"type": "text", "text": note})
        children.append(
            {
                "type": "button",
                "label": "Forget note",
                "style": "danger",
                "confirm": f"Forget the note on task {target.id}?",
                "action": {"name": FORGET},
            }
        )
    else:
        children.append({"type": "text", "tone": "muted", "text": "No note on this task yet."})
    field: dict[str, Any] = {
        "name": "note",
        "label": "Note" if not note else "Replace the note",
        "kind": "textarea",
        "required": True,
        "help": f"Seen by everyone who inspects this task; at most {MAX_NOTE_CHARS} characters.",
    }
    if typed.strip():
        field["default"] = typed[:2000]
    if error:
        field["error"] = error
    form: dict[str, Any] = {
        "type": "form",
        "fields": [field],
        "submit": {"label": "Save note", "action": {"name": SAVE}},
    }
    if error:
        form["error"] = error
    children.append(form)
    return {"type": "overlay", "kind": "modal", "title": f"Task {target.id}", "children": children}


def plugin_overlay(plugin: str, *, marketplace_url: str) -> dict[str, Any]:
    """The installed plugin's panel: its name's parts and its marketplace page."""
    namespace, short = plugin.split(".", 1)
    children: list[Any] = [
        {
            "type": "kv",
            "items": [
                {"key": "Plugin", "value": plugin},
                {"key": "Publisher namespace", "value": namespace},
                {"key": "Name", "value": short},
            ],
        }
    ]
    page = marketplace_page(marketplace_url, plugin)
    if page:
        children.append({"type": "link", "label": "Open its marketplace page", "href": page})
    else:
        children.append(
            {
                "type": "text",
                "tone": "muted",
                "text": "Set marketplace_url in the inspector's settings to link to the plugin's "
                "marketplace page.",
            }
        )
    return {"type": "overlay", "kind": "panel", "title": plugin, "children": children}


def _plain(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and not _CONTROL.search(value)
