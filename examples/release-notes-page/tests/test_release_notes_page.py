"""plugport.release-notes: the release rules without I/O, then the page in a real sandboxed
worker with its releases in the real plugin storage: the tabs, the form's round trip and its
refusals, the side panels and removing a release; trees compared with ``tests/snapshots/``
(after a deliberate change: PLUGPORT_UPDATE_SNAPSHOTS=1, review the diff)."""

from __future__ import annotations

import json
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from release_notes_page.releases import (
    MAX_RELEASES,
    EntryError,
    Release,
    newest_first,
    parse_release,
    stored,
    version_key,
)

from plugport.components import actions_of
from plugport.testing import PluginHandle

PAGE = "release-notes"
SNAPSHOTS = Path(__file__).parent / "snapshots"
SEEDED = [
    {
        "version": "1.9.0",
        "date": "2026-10-01",
        "title": "Faster search",
        "notes": "- Search answers in **half** the time.\n- Typo tolerance for names.",
    },
    {
        "version": "1.10.0",
        "date": "2026-11-12",
        "title": "Dashboards",
        "notes": "## Dashboards\n\nTiles from plugins, arranged per workspace.",
    },
    {
        "version": "1.10.0-rc.1",
        "date": "2026-11-02",
        "title": "Dashboards preview",
        "notes": "Try the dashboards before they ship.",
    },
]
NEW = {
    "version": "1.11.0",
    "date": "2026-12-06",
    "title": "Release notes page",
    "notes": "  Record releases from the host's own page.\n\n<script>alert(1)</script>  ",
}


def assert_snapshot(tree: Any, name: str) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("PLUGPORT_UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(tree, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path} is missing: run once with PLUGPORT_UPDATE_SNAPSHOTS=1"
    assert tree == json.loads(path.read_text())


def tab(tree: Any, tab_id: str) -> list[Any]:
    tabs = next(node for node in tree["children"] if node["type"] == "tabs")["tabs"]
    found: list[Any] = next(t for t in tabs if t["id"] == tab_id)["children"]
    return found


def release_form(tree: Any) -> dict[str, Any]:
    form: dict[str, Any] = tab(tree, "add")[0]
    return form


def releases(n: int) -> list[Release]:
    return [Release(f"0.{i}.0", "2026-01-01", f"R{i}", "notes") for i in range(n)]


# --- the rules ----------------------------------------------------------------------------------


def test_versions_order_by_semantic_versioning() -> None:
    ordered = [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.9.0",
        "1.10.0",
        "10.0.0",
    ]  # the order semver.org gives, and numbers as numbers
    assert all(version_key(a) < version_key(b) for a, b in pairwise(ordered))
    shuffled = [ordered[i] for i in (5, 11, 0, 8, 2, 9, 1, 7, 3, 10, 6, 4)]
    assert sorted(shuffled, key=version_key) == ordered
    with pytest.raises(ValueError, match="not a semantic version"):
        version_key("1.0")


def test_a_valid_release_is_trimmed() -> None:
    release = parse_release(NEW, [])
    assert release == Release(
        "1.11.0",
        "2026-12-06",
        "Release notes page",
        "Record releases from the host's own page.\n\n<script>alert(1)</script>",
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"version": ""}, "version", "Give the version, e.g. 1.4.0."),
        ({"version": "1.4"}, "version", "'1.4' is not a semantic version: write MAJOR.MINOR.PATCH"),
        ({"version": "v1.4.0"}, "version", "'v1.4.0' is not a semantic version"),
        ({"version": "01.4.0"}, "version", "'01.4.0' is not a semantic version"),
        ({"version": "1.4.0-"}, "version", "'1.4.0-' is not a semantic version"),
        ({"version": "9" * 60 + ".0.0"}, "version", "is not a semantic version"),
        ({"version": "1.9.0"}, "version", "1.9.0 is already recorded (released 2026-10-01)."),
        ({"date": ""}, "date", "'' is not a date: write YYYY-MM-DD"),
        ({"date": "2026-02-30"}, "date", "'2026-02-30' is not a date"),
        ({"date": "6.12.2026"}, "date", "'6.12.2026' is not a date"),
        ({"date": "20261206"}, "date", "'20261206' is not a date"),
        ({"title": "   "}, "title", "Give the release a title."),
        ({"title": "t" * 101}, "title", "The title is 101 characters; the most is 100."),
        ({"notes": ""}, "notes", "Write the notes: what changed, in Markdown."),
        ({"notes": "n" * 5001}, "notes", "The notes are 5001 characters; the most is 5000."),
        ({"title": ["a", "b"]}, "title", "Send title once, as text."),
        ({"notes": None}, "notes", "Send notes once, as text."),
    ],
)
def test_a_refused_release_names_its_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    recorded = stored(SEEDED)
    with pytest.raises(EntryError) as raised:
        parse_release({**NEW, **change}, recorded)
    assert raised.value.field == field
    assert message in str(raised.value)


def test_the_page_keeps_at_most_two_hundred_releases() -> None:
    assert parse_release(NEW, releases(MAX_RELEASES - 1)).version == "1.11.0"
    with pytest.raises(EntryError, match="at most 200 releases: remove an old one first"):
        parse_release(NEW, releases(MAX_RELEASES))


def test_the_store_is_read_leniently_newest_first() -> None:
    raw = [*SEEDED, {"version": "2.0.0"}, "x", {**SEEDED[0], "version": "bad"}, None]
    assert [r.version for r in stored(raw)] == ["1.10.0", "1.10.0-rc.1", "1.9.0"]
    assert stored({"releases": SEEDED}) == []
    assert newest_first(stored(SEEDED)) == stored(SEEDED)


# --- the page in the sandbox --------------------------------------------------------------------


def test_an_empty_page(plugin: PluginHandle) -> None:
    tree = plugin.ui.render(PAGE)
    assert_snapshot(tree, "empty")
    assert actions_of(tree) == {"add"}  # nothing to open yet
    plugin.assert_only_declared()


def test_the_tabs_of_a_page_with_releases(plugin: PluginHandle) -> None:
    plugin.storage.seed({"releases": SEEDED})
    tree = plugin.ui.render(PAGE)
    assert_snapshot(tree, "releases")
    assert actions_of(tree) == {"add", "open", "whats-new"}
    history = tab(tree, "history")[0]
    assert [row["version"] for row in history["rows"]] == ["1.10.0", "1.10.0-rc.1", "1.9.0"]
    assert history["sortable"] is True
    assert history["page_size"] == 10


def test_recording_a_release_round_trip(plugin: PluginHandle) -> None:
    plugin.storage.seed({"releases": SEEDED})
    tree = plugin.ui.render(PAGE, action="add", values=NEW)
    assert_snapshot(tree, "recorded")
    kept = plugin.storage.data["releases"]
    assert [r["version"] for r in kept] == ["1.11.0", "1.10.0", "1.10.0-rc.1", "1.9.0"]
    assert kept[0]["notes"].endswith("<script>alert(1)</script>")  # text; the host escapes it
    assert plugin.ui.invalidated == {PAGE: 1}  # others who have the page open reload it
    assert plugin.ui.render(PAGE) == {"type": "stack", "children": tree["children"][1:]}


def test_a_refused_release_is_shown_in_the_form(plugin: PluginHandle) -> None:
    plugin.storage.seed({"releases": SEEDED})
    typed = {**NEW, "version": "1.9.0"}
    tree = plugin.ui.render(PAGE, action="add", values=typed)
    assert_snapshot(tree, "refused")
    form = release_form(tree)
    assert form["error"] == "1.9.0 is already recorded (released 2026-10-01)."
    errors = {f["name"]: f.get("error") for f in form["fields"]}
    assert errors == {"version": form["error"], "date": None, "title": None, "notes": None}
    assert {f["name"]: f.get("default") for f in form["fields"]} == typed  # nothing retyped
    assert plugin.storage.data == {"releases": SEEDED}  # unchanged
    assert plugin.ui.invalidated == {}


def test_what_s_new_opens_the_latest_in_a_panel(plugin: PluginHandle) -> None:
    plugin.storage.seed({"releases": SEEDED})
    tree = plugin.ui.render(PAGE, action="whats-new")
    assert_snapshot(tree, "whats-new")
    assert tree["type"] == "overlay"
    assert tree["kind"] == "panel"


def test_opening_a_chosen_release_and_removing_it(plugin: PluginHandle) -> None:
    plugin.storage.seed({"releases": SEEDED})
    opened = plugin.ui.render(PAGE, action="open", values={"version": "1.9.0"})
    assert opened["title"] == "1.9.0: Faster search"
    remove = opened["children"][-1]["action"]
    assert remove == {"name": "remove", "payload": {"version": "1.9.0"}}
    tree = plugin.ui.render(PAGE, action=remove["name"], payload=remove["payload"])
    assert tree["children"][0] == {"type": "alert", "level": "ok", "text": "Removed 1.9.0."}
    assert [r["version"] for r in plugin.storage.data["releases"]] == ["1.10.0", "1.10.0-rc.1"]
    assert plugin.ui.invalidated == {PAGE: 1}
    again = plugin.ui.render(PAGE, action="remove", payload={"version": "1.9.0"})
    assert again["children"][0]["text"] == "That release was already removed."
    assert plugin.ui.invalidated == {PAGE: 1}


@pytest.mark.parametrize(
    ("action", "values", "said"),
    [
        ("open", {"version": "7.7.7"}, "No release 7.7.7 is recorded."),
        ("open", {}, "Choose a release to open."),
        ("whats-new", {}, "No release is recorded yet."),
    ],
)
def test_opening_what_is_not_there_says_so_on_the_page(
    plugin: PluginHandle, action: str, values: dict[str, Any], said: str
) -> None:
    if action == "open":
        plugin.storage.seed({"releases": SEEDED})
    tree = plugin.ui.render(PAGE, action=action, values=values)
    assert tree["type"] == "stack"
    assert tree["children"][0] == {"type": "alert", "level": "warn", "text": said}
