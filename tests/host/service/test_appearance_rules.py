"""Which theme a page wears, decided without I/O: a plugin's themes read from its manifest data
(validated and checked for contrast again), the choice in effect (token, then workspace, then
Plugport light), and a choice whose theme cannot be worn passed over with the reason; and the
store that keeps choices, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from plugport.errors import NotFoundError
from plugport.host.service._appearance_rules import (
    DEFAULT_MODE,
    DEFAULT_THEME,
    MAX_THEMES_PER_PLUGIN,
    Resolved,
    Stored,
    ThemeEntry,
    builtin_entries,
    check_key,
    plugin_entries,
    resolve,
    unavailable,
)
from plugport.host.service.appearance import BASE_CSS, _not_wearable, stylesheet_of
from plugport.host.service.store import ServiceStore
from plugport.host.state import Installation

LIGHT = {
    "bg": "#eceff4",
    "surface": "#ffffff",
    "text": "#2e3440",
    "muted": "#4c566a",
    "border": "#d8dee9",
    "accent": "#3b6394",
    "ok": "#3f6b2a",
    "warn": "#8a5a00",
    "bad": "#a33a44",
}


def manifest(*themes: object) -> dict[str, object]:
    return {"name": "acme.nord", "contributes": {"themes": list(themes)}}


def test_theme_keys() -> None:
    assert check_key("plugport:light") == ("plugport", "light")
    assert check_key("acme.nord:nord") == ("acme.nord", "nord")
    for bad in ("", "nord", "acme.nord:", ":nord", "Acme:x", "a:b:c", "acme.nord:x y", "a" * 400):
        with pytest.raises(ValueError, match=r"is not a theme; write 'plugin\.name:theme-id'"):
            check_key(bad)


def test_plugin_entries_are_validated_and_checked_again() -> None:
    good = {"id": "nord", "title": "Nord", "light": LIGHT}
    faded = {"id": "faded", "title": "Faded", "light": LIGHT | {"text": "#9aa3b5"}}
    css = {"id": "sneaky", "title": "S", "light": LIGHT, "css": "body{}"}
    nameless = {"title": "no id", "light": LIGHT}
    entries = plugin_entries("acme.nord", manifest(good, faded, css, nameless, "junk"))
    assert [e.key for e in entries] == ["acme.nord:nord", "acme.nord:faded", "acme.nord:sneaky"]
    nord, fading, sneaky = entries
    assert nord.usable
    assert nord.problems == ()
    assert not fading.usable
    assert fading.refused.startswith(
        "theme acme.nord:faded fails the WCAG AA contrast check, so it is never applied: "
        "contributes.themes[1].light.text: text #9aa3b5 on bg #eceff4 has contrast 2."
    )
    assert "(and 7 more)" in fading.refused
    assert {p.path for p in fading.problems} == {"contributes.themes[1].light.text"}
    assert not sneaky.usable
    assert sneaky.theme is None
    assert "contributes.themes[2].css" in sneaky.refused


def test_plugin_entries_tolerate_any_manifest_data() -> None:
    for data in (None, [], "x", {"contributes": None}, {"contributes": {"themes": "x"}}):
        assert plugin_entries("acme.nord", data) == []
    many = [{"id": f"t{i}", "title": "T", "light": LIGHT} for i in range(50)]
    assert len(plugin_entries("acme.nord", manifest(*many))) == MAX_THEMES_PER_PLUGIN


def _finder(*entries: ThemeEntry) -> dict[str, ThemeEntry]:
    found = {e.key: e for e in builtin_entries()}
    return found | {e.key: e for e in entries}


def test_resolve_prefers_the_token_then_the_workspace_then_plugport_light() -> None:
    [nord] = plugin_entries("acme.nord", manifest({"id": "nord", "title": "N", "light": LIGHT}))
    found = _finder(nord)
    resolved = resolve(None, None, found.__getitem__)
    assert (resolved.entry.key, resolved.mode, resolved.source) == (
        DEFAULT_THEME,
        DEFAULT_MODE,
        "default",
    )
    resolved = resolve(None, Stored("plugport:dark", "dark"), found.__getitem__)
    assert (resolved.entry.key, resolved.mode, resolved.source) == (
        "plugport:dark",
        "dark",
        "workspace",
    )
    resolved = resolve(
        Stored("acme.nord:nord", "light"), Stored("plugport:dark", "dark"), found.__getitem__
    )
    assert (resolved.entry.key, resolved.mode, resolved.source) == (
        "acme.nord:nord",
        "light",
        "token",
    )
    assert resolved.passed_over == ()


def test_a_choice_that_cannot_be_worn_is_passed_over_with_the_reason() -> None:
    gone = unavailable("acme.nord:nord", "acme.nord is disabled; enable it to use its themes")
    found = _finder(gone)
    resolved = resolve(
        Stored("acme.nord:nord", "dark"), Stored("plugport:dark", "auto"), found.__getitem__
    )
    assert (resolved.entry.key, resolved.source) == ("plugport:dark", "workspace")
    assert resolved.passed_over == ("acme.nord is disabled; enable it to use its themes",)
    resolved = resolve(None, Stored("acme.nord:nord", "dark"), found.__getitem__)
    assert (resolved.entry.key, resolved.mode, resolved.source) == (
        DEFAULT_THEME,
        "auto",
        "default",
    )


def test_a_refused_theme_is_never_served() -> None:
    [faded] = plugin_entries(
        "acme.nord", manifest({"id": "f", "title": "F", "light": LIGHT | {"muted": "#c0c0c0"}})
    )
    # Even handed to the stylesheet directly (resolve would have passed it over), a theme
    # that fails the contrast check becomes the base stylesheet, not its colours.
    forced = ThemeEntry(faded.key, faded.title, faded.plugin, faded.theme)  # "refused" dropped
    css = stylesheet_of(Resolved(forced, "light", "token"))
    assert css == BASE_CSS
    assert "#c0c0c0" not in css
    [nord] = plugin_entries("acme.nord", manifest({"id": "n", "title": "N", "light": LIGHT}))
    assert "--muted: #4c566a;" in stylesheet_of(Resolved(nord, "light", "token"))


# --- the store ------------------------------------------------------------------------------------


def test_choices_are_stored_per_workspace_and_token(tmp_path: Path) -> None:
    store = ServiceStore(tmp_path / "service.sqlite", clock=lambda: 100.0)
    store.create_workspace("a")
    store.create_workspace("b")
    _, token = store.create_token("workspace", "a")
    store.set_appearance("a", "", "plugport:dark", "", "dark")
    store.set_appearance("a", token.prefix, "acme.nord:nord", "acme.nord", "auto")
    store.set_appearance("b", "", "acme.nord:nord", "acme.nord", "light")
    own = store.appearance("a", token.prefix)
    assert own is not None
    assert (own.theme, own.mode, own.updated_at) == ("acme.nord:nord", "auto", 100.0)
    assert [c.token_prefix for c in store.appearances("a")] == ["", token.prefix]
    with pytest.raises(NotFoundError):
        store.set_appearance("nope", "", "plugport:dark", "", "dark")

    # purging a plugin forgets its themes in that workspace only
    assert store.forget_plugin_themes("a", "acme.nord") == 1
    assert store.appearance("a", token.prefix) is None
    assert store.appearance("a") is not None
    assert store.appearance("b") is not None
    # revoking a token forgets its choice; deleting a workspace forgets them all
    store.set_appearance("a", token.prefix, "plugport:dark", "", "auto")
    store.revoke(token.prefix)
    assert store.appearance("a", token.prefix) is None
    store.delete_workspace("a")
    assert store.appearances("a") == []
    assert store.appearance("b") is not None
    assert store.clear_appearance("b") is True
    assert store.clear_appearance("b") is False
    store.close()


def test_a_store_made_before_themes_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE workspaces (name TEXT PRIMARY KEY, created_at REAL NOT NULL);"
        "CREATE TABLE tokens (prefix TEXT PRIMARY KEY, token_hash TEXT NOT NULL, kind TEXT NOT "
        "NULL, workspace TEXT, description TEXT NOT NULL, created_at REAL NOT NULL, expires_at "
        "REAL, revoked_at REAL, last_used_at REAL);"
        "INSERT INTO workspaces VALUES ('kept', 1.0);"
    )
    old.close()
    store = ServiceStore(path)
    assert [w.name for w in store.workspaces()] == ["kept"]
    store.set_appearance("kept", "", "plugport:dark", "", "dark")
    assert store.appearance("kept") is not None
    store.close()


def test_whose_themes_can_be_worn() -> None:
    def installation(*, enabled: bool = True, ui: object = ("themes",)) -> Installation:
        permissions = {"ui": list(ui)} if isinstance(ui, tuple) else {"ui": ui}
        return Installation(
            "acme.nord", "1.0.0", "registry", "x", "0" * 64, "k", enabled, True, permissions, {}
        )

    assert _not_wearable("acme.nord", "ws", installation()) == ""
    assert _not_wearable("acme.nord", "ws", None) == "acme.nord is not installed in workspace 'ws'"
    assert _not_wearable("acme.nord", "ws", installation(enabled=False)) == (
        "acme.nord is disabled; enable it to use its themes"
    )
    for ui in (("widgets",), (), "themes", None):
        assert _not_wearable("acme.nord", "ws", installation(ui=ui)) == (
            'acme.nord was not granted ui = ["themes"]'
        )
