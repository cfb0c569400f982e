"""Recorded releases, decided without I/O: what a release is (a semantic version, a date, a
title, Markdown notes), the rule a new one must pass (each refusal names the form field), how
versions order (semantic-versioning precedence, so 1.10.0 is newer than 1.9.0 and 2.0.0-rc.1
older than 2.0.0), and what the stored list may hold."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

__all__ = [
    "FIELDS",
    "MAX_NOTES_CHARS",
    "MAX_RELEASES",
    "MAX_TITLE_CHARS",
    "EntryError",
    "Release",
    "find",
    "newest_first",
    "parse_release",
    "stored",
    "version_key",
]

MAX_RELEASES = 200
MAX_TITLE_CHARS = 100
MAX_NOTES_CHARS = 5000
FIELDS = ("version", "date", "title", "notes")
_NUMBER = r"(?:0|[1-9]\d*)"
_IDENTIFIER = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_VERSION = re.compile(
    rf"^({_NUMBER})\.({_NUMBER})\.({_NUMBER})(?:-({_IDENTIFIER}(?:\.{_IDENTIFIER})*))?$"
)
MAX_VERSION_CHARS = 50


class EntryError(ValueError):
    """A release the form refuses: ``field`` is the form field to mark."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Release:
    version: str
    date: str  # YYYY-MM-DD
    title: str
    notes: str

    def json(self) -> dict[str, str]:
        return asdict(self)


def version_key(version: str) -> tuple[Any, ...]:
    """Semantic-versioning precedence: numbers compare as numbers; a pre-release sorts before
    its release, its identifiers one by one, numeric ones below alphanumeric ones."""
    found = _VERSION.match(version)
    if found is None:
        raise ValueError(f"{version!r} is not a semantic version")
    major, minor, patch, pre = found.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def parse_release(values: Mapping[str, Any], recorded: Sequence[Release]) -> Release:
    """The release a submitted form describes, or an :class:`EntryError` for the first field
    that breaks the rule (in the form's order)."""
    text = {name: _text(values, name) for name in FIELDS}
    version = text["version"]
    if not version:
        raise EntryError("version", "Give the version, e.g. 1.4.0.")
    if len(version) > MAX_VERSION_CHARS or not _VERSION.match(version):
        raise EntryError(
            "version",
            f"{version[:MAX_VERSION_CHARS]!r} is not a semantic version: write MAJOR.MINOR.PATCH, "
            "e.g. 1.4.0 or 2.0.0-rc.1.",
        )
    same = find(recorded, version)
    if same is not None:
        raise EntryError("version", f"{version} is already recorded (released {same.date}).")
    when = text["date"]
    try:
        valid = len(when) == 10 and date.fromisoformat(when).isoformat() == when
    except ValueError:
        valid = False
    if not valid:
        raise EntryError("date", f"{when[:20]!r} is not a date: write YYYY-MM-DD, e.g. 2026-12-06.")
    title = text["title"]
    if not title:
        raise EntryError("title", "Give the release a title.")
    if len(title) > MAX_TITLE_CHARS:
        raise EntryError(
            "title", f"The title is {len(title)} characters; the most is {MAX_TITLE_CHARS}."
        )
    notes = text["notes"]
    if not notes:
        raise EntryError("notes", "Write the notes: what changed, in Markdown.")
    if len(notes) > MAX_NOTES_CHARS:
        raise EntryError(
            "notes", f"The notes are {len(notes)} characters; the most is {MAX_NOTES_CHARS}."
        )
    if len(recorded) >= MAX_RELEASES:
        raise EntryError(
            "version", f"The page keeps at most {MAX_RELEASES} releases: remove an old one first."
        )
    return Release(version, when, title, notes)


def stored(raw: Any) -> list[Release]:
    """The releases in storage, skipping entries that are not releases (a hand-edited or
    newer store), newest first."""
    found = []
    for entry in raw if isinstance(raw, list) else []:
        if (
            isinstance(entry, dict)
            and set(entry) == set(FIELDS)
            and all(isinstance(entry[f], str) for f in FIELDS)
            and _VERSION.match(entry["version"])
        ):
            found.append(Release(**entry))
    return newest_first(found)


def newest_first(releases: Iterable[Release]) -> list[Release]:
    return sorted(releases, key=lambda r: version_key(r.version), reverse=True)


def find(releases: Iterable[Release], version: Any) -> Release | None:
    return next((r for r in releases if r.version == version), None)


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name, "")
    if not isinstance(value, str):
        raise EntryError(name, f"Send {name} once, as text.")
    # Notes keep their inner line breaks (Markdown); every field loses surrounding blanks.
    return value.strip()
