"""plugport.task-inspector: the decisions without I/O, then both menu items in a real sandboxed
worker, opened with the contexts the host builds (and ones it never would), the note's round
trip through the real plugin storage, and the overlays compared with ``tests/snapshots/``
(after a deliberate change: PLUGPORT_UPDATE_SNAPSHOTS=1, review the diff)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from task_inspector.inspector import (
    MAX_NOTE_CHARS,
    NoteError,
    TaskTarget,
    check_note,
    marketplace_page,
    note_key,
    plugin_target,
    runbook_for,
    task_target,
)

from plugport.errors import InvalidInputError
from plugport.testing import PluginHandle

TASK_ITEM = "inspector.task"
PLUGIN_ITEM = "inspector.plugin"
TASK = {"menu": "task", "task": "t-4f2a", "type": "GITHUB_PR_REVIEW"}
INSTALLATION = {"menu": "installation", "plugin": "plugport.slack"}
RUNBOOKS = {
    "GITHUB_*": "https://wiki.example.com/runbooks/github",
    "GITHUB_PR_REVIEW": "https://wiki.example.com/runbooks/github#reviews",
    "*": "https://wiki.example.com/runbooks",
}
SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(tree: Any, name: str) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("PLUGPORT_UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(tree, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path} is missing: run once with PLUGPORT_UPDATE_SNAPSHOTS=1"
    assert tree == json.loads(path.read_text())


def form_of(tree: Any) -> dict[str, Any]:
    return next(node for node in tree["children"] if node["type"] == "form")


# --- decisions ----------------------------------------------------------------------------------


def test_the_task_context_the_host_builds_is_answered() -> None:
    assert task_target(TASK) == TaskTarget("t-4f2a", "GITHUB_PR_REVIEW")
    assert task_target(TASK).family == "GITHUB"  # type: ignore[union-attr]
    assert TaskTarget("1", "WORD_COUNT").family == "WORD"
    assert TaskTarget("1", "ping").family == ""


@pytest.mark.parametrize(
    "context",
    [
        {},
        INSTALLATION,
        {"menu": "workflow_run", "run": "r-1"},
        {"menu": "installation", "task": "t-1", "type": "X"},  # a task's keys on another menu
        {"menu": "task", "type": "X"},
        {"menu": "task", "task": "t-1"},
        {"menu": "task", "task": "", "type": "X"},
        {"menu": "task", "task": 7, "type": "X"},
        {"menu": "task", "task": "t-1", "type": "no spaces allowed"},
        {"menu": "task", "task": "t\n1", "type": "X"},
        {"menu": "task", "task": "t" * 201, "type": "X"},
    ],
)
def test_any_other_context_gets_no_task_overlay(context: dict[str, Any]) -> None:
    assert task_target(context) is None


def test_the_installation_context_names_a_plugin() -> None:
    assert plugin_target(INSTALLATION) == "plugport.slack"
    assert plugin_target(TASK) is None
    assert plugin_target({"menu": "installation", "plugin": "not a plugin"}) is None
    assert plugin_target({"menu": "installation", "plugin": ["plugport.slack"]}) is None
    assert plugin_target({"menu": "task", "plugin": "plugport.slack"}) is None


def test_the_most_specific_runbook_wins() -> None:
    assert runbook_for("GITHUB_PR_REVIEW", RUNBOOKS) == RUNBOOKS["GITHUB_PR_REVIEW"]
    assert runbook_for("GITHUB_RELEASE_NOTES", RUNBOOKS) == RUNBOOKS["GITHUB_*"]
    assert runbook_for("SLACK_POST", RUNBOOKS) == RUNBOOKS["*"]
    assert runbook_for("SLACK_POST", {"GITHUB_*": "https://x.test"}) is None
    assert runbook_for("GITHUB", {"GITHUB_*": "https://x.test"}) is None  # the prefix is GITHUB_


def test_the_note_rule() -> None:
    assert check_note("  Retried by ada after the outage.\n") == "Retried by ada after the outage."
    assert check_note("x" * MAX_NOTE_CHARS) == "x" * MAX_NOTE_CHARS
    with pytest.raises(NoteError, match="is 501 characters long; the most is 500"):
        check_note("x" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(NoteError, match="The note is empty"):
        check_note(" \n\t")
    with pytest.raises(NoteError, match="as text"):
        check_note(["a", "b"])  # a repeated form field arrives as a list


def test_marketplace_pages() -> None:
    assert marketplace_page("", "plugport.slack") is None
    assert marketplace_page("https://plugins.example.com/", "plugport.slack") == (
        "https://plugins.example.com/plugins/plugport.slack"
    )


# --- the menu items in the sandbox ------------------------------------------------------------


def test_a_task_s_modal(plugin: PluginHandle) -> None:
    plugin.config.set(runbooks=RUNBOOKS)
    tree = plugin.ui.render(TASK_ITEM, context=TASK)
    assert_snapshot(tree, "task")
    plugin.assert_only_declared()


def test_a_task_without_a_runbook(plugin: PluginHandle) -> None:
    tree = plugin.ui.render(TASK_ITEM, context={**TASK, "type": "ping"})
    assert tree["children"][0]["items"][2:] == [
        {"key": "Service", "value": "(no prefix)"},
        {"key": "Runbook", "value": "none configured for this type"},
    ]
    assert not [node for node in tree["children"] if node["type"] == "link"]


def test_an_installed_plugin_s_panel(plugin: PluginHandle) -> None:
    assert_snapshot(plugin.ui.render(PLUGIN_ITEM, context=INSTALLATION), "plugin-unlinked")
    plugin.config.set(marketplace_url="https://plugins.example.com")
    assert_snapshot(plugin.ui.render(PLUGIN_ITEM, context=INSTALLATION), "plugin")


@pytest.mark.parametrize(
    ("item", "context"),
    [
        (TASK_ITEM, INSTALLATION),
        (TASK_ITEM, {"menu": "workflow_run", "run": "r-1"}),
        (TASK_ITEM, {"menu": "task"}),
        (PLUGIN_ITEM, TASK),
        (PLUGIN_ITEM, {}),
    ],
)
def test_an_unknown_context_shows_nothing(
    plugin: PluginHandle, item: str, context: dict[str, Any]
) -> None:
    assert plugin.ui.render(item, context=context) is None
    assert plugin.calls == []  # decided before reading settings or storage


def test_a_note_saved_shown_and_forgotten(plugin: PluginHandle) -> None:
    plugin.config.set(runbooks=RUNBOOKS)
    tree = plugin.ui.render(
        TASK_ITEM, context=TASK, action="save-note", values={"note": "  Retried by ada.  "}
    )
    assert_snapshot(tree, "task-with-note")
    assert plugin.storage.data == {
        note_key(TaskTarget("t-4f2a", "GITHUB_PR_REVIEW")): "Retried by ada."
    }
    assert plugin.ui.render(TASK_ITEM, context=TASK) == tree  # opened again later: still there
    other = plugin.ui.render(TASK_ITEM, context={**TASK, "task": "t-other"})
    assert {"type": "text", "tone": "muted", "text": "No note on this task yet."} in other[
        "children"
    ]
    forgotten = plugin.ui.render(TASK_ITEM, context=TASK, action="forget-note")
    assert forgotten == plugin.ui.render(TASK_ITEM, context=TASK)
    assert plugin.storage.data == {}
    assert_snapshot(forgotten, "task")  # as it was before the note


def test_a_refused_note_is_said_in_the_form_and_nothing_is_kept(plugin: PluginHandle) -> None:
    plugin.config.set(runbooks=RUNBOOKS)
    tree = plugin.ui.render(TASK_ITEM, context=TASK, action="save-note", values={"note": "   "})
    assert_snapshot(tree, "task-note-refused")
    assert plugin.storage.data == {}
    long = "x" * (MAX_NOTE_CHARS + 20)
    tree = plugin.ui.render(TASK_ITEM, context=TASK, action="save-note", values={"note": long})
    form = form_of(tree)
    assert form["error"] == "The note is 520 characters long; the most is 500."
    assert form["fields"][0]["default"] == long  # what was typed stays in the box
    assert plugin.storage.data == {}


def test_a_note_that_does_not_fit_the_storage_quota(plugin: PluginHandle) -> None:
    plugin.storage.seed({"note/t-old": "x" * (256 * 1024 - 200)})
    tree = plugin.ui.render(
        TASK_ITEM, context=TASK, action="save-note", values={"note": "y" * MAX_NOTE_CHARS}
    )
    assert form_of(tree)["error"].startswith("The inspector's storage is full")
    assert list(plugin.storage.data) == ["note/t-old"]


def test_hostile_context_values_stay_text(plugin: PluginHandle) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    tree = plugin.ui.render(TASK_ITEM, context={**TASK, "task": hostile})
    assert tree["title"] == f"Task {hostile}"
    assert {"key": "Task", "value": hostile} in tree["children"][0]["items"]


def test_settings_the_schema_refuses(plugin: PluginHandle) -> None:
    with pytest.raises(InvalidInputError, match="does not match"):
        plugin.config.set(runbooks={"GITHUB_*": "http://wiki.example.com/plain-http"})
    with pytest.raises(InvalidInputError, match="does not match"):
        plugin.config.set(marketplace_url="javascript:alert(1)")
    assert plugin.config.values == {"runbooks": {}, "marketplace_url": ""}
