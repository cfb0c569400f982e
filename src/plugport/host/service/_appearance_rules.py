"""Which theme a page of the host service wears, decided without I/O: a token's own choice, else
its workspace's default, else Plugport light; and a stored choice whose theme is gone, disabled
or no longer readable falls through to the next, with the reason kept to show.

A plugin's themes are read again from its installed manifest each time (never trusted from
install time): each is validated as a :class:`~plugport.manifest.Theme` (tokens only) and
checked for contrast, so a manifest changed on disk, or a rule made stricter since the install,
never gets an unreadable theme served; it is listed as refused, with the reason."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from plugport._builtin_themes import BUILTIN_NAMESPACE, BUILTIN_THEMES
from plugport._manifest_errors import problems_from
from plugport._theme_rules import theme_problems
from plugport.errors import Problem
from plugport.manifest import Theme

__all__ = [
    "DEFAULT_MODE",
    "DEFAULT_THEME",
    "MAX_THEMES_PER_PLUGIN",
    "Resolved",
    "Stored",
    "ThemeEntry",
    "builtin_entries",
    "check_key",
    "plugin_entries",
    "resolve",
    "unavailable",
]

DEFAULT_THEME = f"{BUILTIN_NAMESPACE}:light"
DEFAULT_MODE = "auto"
MAX_THEMES_PER_PLUGIN = 20
"""A picker lists at most this many themes of one plugin (the manifest's order)."""
_KEY = re.compile(r"(?P<owner>[a-z0-9][a-z0-9.-]{0,128}):(?P<id>[a-z0-9][a-z0-9_.-]{0,127})")
Source = Literal["token", "workspace", "default"]


@dataclass(frozen=True)
class ThemeEntry:
    """A theme a workspace could wear: ``key`` is ``plugport:<id>`` or ``<plugin>:<id>``;
    ``refused`` says why it cannot be applied (empty when it can), ``problems`` lists its
    contrast (or shape) problems at their manifest paths."""

    key: str
    title: str
    plugin: str = ""
    theme: Theme | None = None
    refused: str = ""
    problems: tuple[Problem, ...] = ()

    @property
    def usable(self) -> bool:
        return self.theme is not None and not self.refused

    def public(self) -> dict[str, Any]:
        theme = self.theme
        return {
            "id": self.key,
            "title": self.title,
            "plugin": self.plugin or None,
            "modes": [m for m in ("light", "dark") if theme and getattr(theme, m) is not None],
            "font": theme.font if theme else None,
            "radius_px": theme.radius_px if theme else None,
            "density": theme.density if theme else None,
            "light": theme.light.model_dump() if theme and theme.light else None,
            "dark": theme.dark.model_dump() if theme and theme.dark else None,
            "usable": self.usable,
            "refused": self.refused or None,
            "problems": [{"path": p.path, "message": p.message} for p in self.problems],
        }


@dataclass(frozen=True)
class Stored:
    """A stored choice, as :func:`resolve` reads it."""

    theme: str
    mode: str


@dataclass(frozen=True)
class Resolved:
    """The theme in effect, where the choice came from, and why any stored choice above it
    was passed over."""

    entry: ThemeEntry
    mode: str
    source: Source
    passed_over: tuple[str, ...] = field(default=())


def check_key(key: str) -> tuple[str, str]:
    """``(plugin or 'plugport', theme id)`` of a theme key, or ``ValueError`` saying what one
    looks like."""
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        builtins = ", ".join(BUILTIN_THEMES)
        raise ValueError(
            f"{str(key)[:200]!r} is not a theme; write 'plugin.name:theme-id' or one of {builtins}"
        )
    return match.group("owner"), match.group("id")


def builtin_entries() -> list[ThemeEntry]:
    return [ThemeEntry(key, theme.title, theme=theme) for key, theme in BUILTIN_THEMES.items()]


def _refusal(key: str, problems: list[Problem]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (
        f"theme {key} fails the WCAG AA contrast check, so it is never applied: {problems[0]}{more}"
    )


def plugin_entries(plugin: str, manifest: Any) -> list[ThemeEntry]:
    """The themes in ``plugin``'s parsed manifest (``contributes.themes``), each validated as a
    Theme and checked for contrast again; one that fails is an entry with ``refused`` set."""
    contributes = manifest.get("contributes") if isinstance(manifest, Mapping) else None
    items = contributes.get("themes") if isinstance(contributes, Mapping) else None
    if not isinstance(items, list):
        return []
    entries = []
    for index, item in enumerate(items[:MAX_THEMES_PER_PLUGIN]):
        path = f"contributes.themes[{index}]"
        try:
            theme = Theme.model_validate(item)
        except ValidationError as exc:
            raw_id = item.get("id") if isinstance(item, Mapping) else None
            try:
                _, theme_id = check_key(f"{plugin}:{raw_id}")
            except ValueError:
                continue  # not even an id to list it under
            problems = [Problem(f"{path}.{p.path}", p.message) for p in problems_from(exc, Theme)]
            key = f"{plugin}:{theme_id}"
            refusal = f"theme {key} is not valid design tokens: {problems[0]}"
            entries.append(ThemeEntry(key, theme_id, plugin, None, refusal, tuple(problems)))
            continue
        key = f"{plugin}:{theme.id}"
        problems = theme_problems(theme, path=path)
        refused = _refusal(key, problems) if problems else ""
        entries.append(ThemeEntry(key, theme.title, plugin, theme, refused, tuple(problems)))
    return entries


def unavailable(key: str, why: str) -> ThemeEntry:
    """An entry for a theme that cannot be worn at all (unknown, not installed, disabled)."""
    return ThemeEntry(key, key, refused=why)


def resolve(
    token: Stored | None,
    workspace: Stored | None,
    find: Callable[[str], ThemeEntry],
) -> Resolved:
    """The choice in effect: the token's own, else the workspace's default, else Plugport light
    in ``auto``; each stored choice whose theme cannot be worn is passed over, saying why."""
    passed_over: list[str] = []
    choices: tuple[tuple[Source, Stored | None], ...] = (("token", token), ("workspace", workspace))
    for source, stored in choices:
        if stored is None:
            continue
        entry = find(stored.theme)
        if entry.usable:
            return Resolved(entry, stored.mode, source, tuple(passed_over))
        passed_over.append(entry.refused)
    default = find(DEFAULT_THEME)
    return Resolved(default, DEFAULT_MODE, "default", tuple(passed_over))
