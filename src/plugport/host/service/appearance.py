"""The host service's appearance: which theme and mode a workspace's pages wear, chosen from the
built-in themes and the themes of the workspace's enabled plugins granted ``ui = ["themes"]``.
A workspace has a default and each token may have its own choice (the service has tokens,
not user accounts), both kept in ``service.sqlite``. The theme in effect is served as a
stylesheet of CSS custom properties generated from its tokens, checked for contrast again
each time; a theme that fails is refused, never served."""

from __future__ import annotations

import asyncio
import tomllib
from typing import TYPE_CHECKING, Any, Literal, Protocol

from plugport._builtin_themes import BUILTIN_NAMESPACE, BUILTIN_THEMES
from plugport._theme_rules import MODES, theme_css, theme_problems
from plugport.errors import Problem
from plugport.host.service._appearance_rules import (
    DEFAULT_THEME,
    Resolved,
    Stored,
    ThemeEntry,
    builtin_entries,
    check_key,
    plugin_entries,
    resolve,
    unavailable,
)
from plugport.host.service.store import FieldError, Principal, ServiceStore
from plugport.manifest import MANIFEST_FILENAME, MAX_MANIFEST_BYTES

if TYPE_CHECKING:
    from plugport.host.host import PluginHost
    from plugport.host.service.workspaces import Workspace
    from plugport.host.state import Installation

__all__ = ["AppearanceService", "Scope", "ThemeChoiceError", "stylesheet_path"]

Scope = Literal["token", "workspace"]
SCOPES: tuple[Scope, ...] = ("token", "workspace")
BASE_CSS = "/* Plugport light: the shared stylesheet's own values, nothing to override. */\n"


class ThemeChoiceError(FieldError):
    """A theme that cannot be worn: unknown, not installed, disabled, or failing the contrast
    check (``problems``: each at its manifest path)."""

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__("theme", message)
        self.reason = message
        self.problems = list(problems)


class Workspaces(Protocol):
    """What this needs of the :class:`HostService` (not imported: it imports this)."""

    store: ServiceStore

    def workspace(self, name: str) -> Workspace: ...


def stylesheet_path(ws: str) -> str:
    return f"/workspaces/{ws}/theme.css"


def _read_manifest(host: PluginHost, installation: Installation) -> Any:
    """The installed manifest's data, or None when it cannot be read as TOML."""
    path = host.paths.code_dir(installation) / MANIFEST_FILENAME
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            return None
        return tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _plugin_themes(host: PluginHost, installation: Installation) -> list[ThemeEntry]:
    data = _read_manifest(host, installation)
    return plugin_entries(installation.name, data) if data is not None else []


def _why_not(entry: ThemeEntry) -> str:
    """A refusal to answer a choice with: the problems go alongside, so only their count here."""
    count = len(entry.problems)
    if entry.theme is None or not count:
        return entry.refused
    return (
        f"theme {entry.key} fails the WCAG AA contrast check, so it is never applied "
        f"({count} problem{'s' if count != 1 else ''}, each at its path in the plugin's manifest)"
    )


def _wears_themes(installation: Installation) -> bool:
    ui = installation.permissions.get("ui") or []
    return installation.enabled and isinstance(ui, list) and "themes" in ui


def _not_wearable(owner: str, ws: str, installation: Installation | None) -> str:
    """Why ``owner``'s themes cannot be worn in ``ws`` (empty when they can)."""
    if installation is None:
        return f"{owner} is not installed in workspace {ws!r}"
    if not installation.enabled:
        return f"{owner} is disabled; enable it to use its themes"
    if not _wears_themes(installation):
        return f'{owner} was not granted ui = ["themes"]'
    return ""


def _builtin(key: str) -> ThemeEntry:
    theme = BUILTIN_THEMES.get(key)
    if theme is None:
        known = ", ".join(BUILTIN_THEMES)
        return unavailable(key, f"there is no built-in theme {key!r} (built in: {known})")
    return ThemeEntry(key, theme.title, theme=theme)


class AppearanceService:
    def __init__(self, service: Workspaces) -> None:
        self.service = service

    async def _host(self, ws: str) -> PluginHost:
        return await self.service.workspace(ws).started()

    # --- the themes ---------------------------------------------------------------------------

    async def catalogue(self, ws: str) -> list[ThemeEntry]:
        """Every theme the workspace could wear: the built-ins, then each enabled plugin's
        granted themes (those that fail the contrast check included, marked refused)."""
        host = await self._host(ws)
        entries = builtin_entries()
        for installation in host.state.installations():
            if _wears_themes(installation):
                entries += await asyncio.to_thread(_plugin_themes, host, installation)
        return entries

    async def find(self, ws: str, key: str) -> ThemeEntry:
        """The theme ``key`` names, or an unusable entry saying why it cannot be worn."""
        try:
            owner, theme_id = check_key(key)
        except ValueError as exc:
            return unavailable(str(key)[:200], str(exc))
        if owner == BUILTIN_NAMESPACE:
            return _builtin(key)
        host = await self._host(ws)
        installation = host.state.get(owner)
        why = _not_wearable(owner, ws, installation)
        if why or installation is None:
            return unavailable(key, why)
        entries = await asyncio.to_thread(_plugin_themes, host, installation)
        found = next((e for e in entries if e.key == key), None)
        if found is None:
            ids = ", ".join(e.key.partition(":")[2] for e in entries) or "none"
            return unavailable(key, f"{owner} has no theme {theme_id!r} (its themes: {ids})")
        return found

    # --- choices ------------------------------------------------------------------------------

    async def resolved(self, ws: str, who: Principal) -> Resolved:
        """The theme ``who`` sees in ``ws``, and why any stored choice was passed over."""
        store = self.service.store
        own = store.appearance(ws, who.prefix) if who.kind == "workspace" else None
        default = store.appearance(ws)
        keys = {DEFAULT_THEME, *(c.theme for c in (own, default) if c is not None)}
        found = {key: await self.find(ws, key) for key in keys}
        return resolve(
            Stored(own.theme, own.mode) if own else None,
            Stored(default.theme, default.mode) if default else None,
            found.__getitem__,
        )

    async def view(self, ws: str, who: Principal) -> dict[str, Any]:
        """What ``GET .../appearance`` answers: the choice in effect and where it came from,
        the stored choices, and every theme the workspace could wear."""
        store = self.service.store
        resolved = await self.resolved(ws, who)
        own = store.appearance(ws, who.prefix) if who.kind == "workspace" else None
        default = store.appearance(ws)
        return {
            "theme": resolved.entry.key,
            "mode": resolved.mode,
            "source": resolved.source,
            "passed_over": list(resolved.passed_over),
            "own": own.public() if own else None,
            "workspace_default": default.public() if default else None,
            "stylesheet": stylesheet_path(ws),
            "themes": [entry.public() for entry in await self.catalogue(ws)],
        }

    async def choose(
        self, ws: str, who: Principal, theme: str, mode: str, scope: str = "token"
    ) -> dict[str, Any]:
        """Store ``who``'s choice (``scope="token"``) or the workspace's default, once the
        theme is known to be wearable: installed, enabled, granted and readable."""
        if mode not in MODES:
            raise FieldError("mode", f"{str(mode)[:50]!r} is not one of {', '.join(MODES)}")
        prefix = self._prefix(who, scope)
        entry = await self.find(ws, theme)
        if not entry.usable:
            if scope == "workspace":
                await self._audit(ws, who, "refused", theme=entry.key, reason=entry.refused)
            raise ThemeChoiceError(_why_not(entry), entry.problems)
        self.service.store.set_appearance(ws, prefix, entry.key, entry.plugin, mode)
        if scope == "workspace":
            await self._audit(ws, who, "changed", theme=entry.key, mode=mode)
        return await self.view(ws, who)

    async def reset(self, ws: str, who: Principal, scope: str = "token") -> dict[str, Any]:
        """Forget ``who``'s own choice (it follows the workspace's default again) or the
        workspace's default (Plugport light again)."""
        prefix = self._prefix(who, scope)
        if self.service.store.clear_appearance(ws, prefix) and scope == "workspace":
            await self._audit(ws, who, "reset")
        return await self.view(ws, who)

    def _prefix(self, who: Principal, scope: str) -> str:
        if scope not in SCOPES:
            raise FieldError("scope", f"{str(scope)[:50]!r} is not one of {', '.join(SCOPES)}")
        if scope == "workspace":
            return ""
        if who.kind != "workspace":
            raise FieldError(
                "scope",
                "an admin token has no appearance of its own (it signs in to no page); "
                "set the workspace's default with scope 'workspace'",
            )
        return who.prefix

    async def _audit(self, ws: str, who: Principal, outcome: str, **detail: Any) -> None:
        host = await self._host(ws)
        host.state.audit("appearance", f"workspace:{ws}", outcome, actor=who.actor, **detail)

    # --- the stylesheet -----------------------------------------------------------------------

    async def workspace_stylesheet(self, ws: str) -> str:
        """The CSS of the workspace's default theme: what a custom view is drawn with (its
        frame has an opaque origin, so it is sent no cookie that would say whose it is)."""
        default = self.service.store.appearance(ws)
        keys = {DEFAULT_THEME, *((default.theme,) if default else ())}
        found = {key: await self.find(ws, key) for key in keys}
        stored = Stored(default.theme, default.mode) if default else None
        return stylesheet_of(resolve(None, stored, found.__getitem__))

    async def stylesheet(self, ws: str, who: Principal) -> str:
        """The CSS of the theme in effect for ``who``: custom properties only, generated from
        the theme's tokens after its contrast is checked once more."""
        resolved = await self.resolved(ws, who)
        return stylesheet_of(resolved)


def stylesheet_of(resolved: Resolved) -> str:
    """The stylesheet for a resolved choice; Plugport light is the shared stylesheet itself.
    A theme that fails the contrast check here (it cannot have got this far) is not served:
    the page keeps Plugport light."""
    theme = resolved.entry.theme
    if theme is None or resolved.entry.key == DEFAULT_THEME or theme_problems(theme):
        return BASE_CSS
    return theme_css(theme, mode=resolved.mode)
