"""The UI registry: messages in a bounded ring, commands and widgets limited to what the manifest
contributes, change notifications, and refusals that leave every part of the state as it was."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from plugport.errors import InvalidInputError, ResourceLimitExceededError
from plugport.runtime.capabilities.ui import (
    UiCommand,
    UiMessage,
    UiRegistry,
    UiWidget,
    check_contributed,
    check_level,
    encode_data,
)

A, B = "acme.alpha", "acme.beta"
COMMANDS = {"tasks.refresh": "Refresh tasks", "tasks.clear": "Clear tasks"}
WIDGETS = {"tasks.summary": "Task summary"}


class Clock:
    """1000.0, 1001.0, ...: each reading one second after the last."""

    def __init__(self) -> None:
        self.now = 999.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


class Changes:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, plugin: str, what: str) -> None:
        self.calls.append((plugin, what))


def make(**options: Any) -> tuple[UiRegistry, Changes]:
    changes = Changes()
    return UiRegistry(clock=Clock(), on_change=changes, **options), changes


def state(ui: UiRegistry) -> tuple[list[UiMessage], list[UiCommand], list[UiWidget]]:
    return ui.messages(limit=10_000), ui.commands(), ui.widgets()


# --- messages ------------------------------------------------------------------------------------


def test_post_message_levels_and_order() -> None:
    ui, changes = make()
    first = ui.post_message(A, "hello")
    assert first == UiMessage(A, "info", "hello", 1000.0)
    ui.post_message(B, "careful", "warning")
    ui.post_message(A, "broken", level="error")
    assert [(m.plugin, m.level, m.text, m.at) for m in ui.messages()] == [
        (A, "info", "hello", 1000.0),
        (B, "warning", "careful", 1001.0),
        (A, "error", "broken", 1002.0),
    ]
    assert [m.text for m in ui.messages(A)] == ["hello", "broken"]
    assert ui.messages("acme.nobody") == []
    assert changes.calls == [(A, "message"), (B, "message"), (A, "message")]


def test_all_plugins_view_keeps_posting_order_even_when_the_clock_ties() -> None:
    ui = UiRegistry(clock=lambda: 5.0)
    for plugin, text in [(B, "1"), (A, "2"), (B, "3"), (A, "4")]:
        ui.post_message(plugin, text)
    assert [m.text for m in ui.messages()] == ["1", "2", "3", "4"]


def test_ring_buffer_drops_the_oldest_per_plugin() -> None:
    ui, _ = make(max_messages_per_plugin=3)
    ui.post_message(B, "kept")
    for n in range(5):
        ui.post_message(A, f"a{n}")
    assert [m.text for m in ui.messages(A)] == ["a2", "a3", "a4"]
    assert [m.text for m in ui.messages(B)] == ["kept"]
    assert [m.text for m in ui.messages()] == ["kept", "a2", "a3", "a4"]


def test_messages_limit_returns_the_newest() -> None:
    ui, _ = make()
    for n in range(5):
        ui.post_message(A, str(n))
    assert [m.text for m in ui.messages(A, limit=2)] == ["3", "4"]
    assert [m.text for m in ui.messages(limit=1)] == ["4"]
    assert ui.messages(A, limit=0) == []
    assert len(ui.messages(A, limit=50)) == 5


@pytest.mark.parametrize("limit", [-1, 1.5, "3", True])
def test_messages_refuses_a_bad_limit(limit: Any) -> None:
    ui, _ = make()
    ui.post_message(A, "x")
    with pytest.raises(InvalidInputError, match="limit must be a whole number >= 0"):
        ui.messages(limit=limit)


def test_text_length_boundary() -> None:
    ui, _ = make(max_text_chars=5)
    assert ui.post_message(A, "é" * 5).text == "ééééé"  # characters, not bytes
    with pytest.raises(InvalidInputError, match="text must be 1 to 5 characters long; it is 6"):
        ui.post_message(A, "x" * 6)
    assert [m.text for m in ui.messages()] == ["ééééé"]


@pytest.mark.parametrize(
    ("text", "level", "message"),
    [
        ("", "info", "text must be 1 to 2000 characters long; it is 0"),
        ("x" * 2001, "info", "text must be 1 to 2000 characters long; it is 2001"),
        (None, "info", "text must be a string, not NoneType"),
        (["x"], "info", "text must be a string, not list"),
        ("hi", "debug", "level 'debug' is not one of info, warning, error"),
        ("hi", "INFO", "level 'INFO' is not one of info, warning, error"),
        ("hi", None, "level None is not one of"),
        ("", "debug", "level 'debug'"),
    ],
)
def test_refused_message_changes_nothing(text: Any, level: Any, message: str) -> None:
    ui, changes = make()
    ui.post_message(A, "before")
    before, calls = state(ui), list(changes.calls)
    with pytest.raises(InvalidInputError) as info:
        ui.post_message(A, text, level)
    assert message in str(info.value)
    assert state(ui) == before
    assert changes.calls == calls


def test_check_level_accepts_the_three_levels() -> None:
    assert [check_level(level) for level in ("info", "warning", "error")] == [
        "info",
        "warning",
        "error",
    ]


# --- commands ------------------------------------------------------------------------------------


def test_register_commands_default_title_and_replace() -> None:
    ui, changes = make()
    assert ui.register_command(A, "tasks.refresh", "", contributed=COMMANDS) == UiCommand(
        A, "tasks.refresh", "Refresh tasks"
    )
    ui.register_command(A, "tasks.clear", "Clear all", contributed=COMMANDS)
    ui.register_command(B, "tasks.refresh", "", contributed=COMMANDS)
    ui.register_command(A, "tasks.refresh", "Refresh now", contributed=COMMANDS)
    assert ui.commands() == [
        UiCommand(A, "tasks.clear", "Clear all"),
        UiCommand(A, "tasks.refresh", "Refresh now"),
        UiCommand(B, "tasks.refresh", "Refresh tasks"),
    ]
    assert ui.commands(B) == [UiCommand(B, "tasks.refresh", "Refresh tasks")]
    assert ui.commands("acme.nobody") == []
    assert changes.calls == [(A, "command"), (A, "command"), (B, "command"), (A, "command")]


def test_title_length_boundary() -> None:
    ui, _ = make()
    assert ui.register_command(A, "tasks.clear", "t" * 100, contributed=COMMANDS).title == (
        "t" * 100
    )
    with pytest.raises(
        InvalidInputError, match="title must be 1 to 100 characters long; it is 101"
    ):
        ui.register_command(A, "tasks.refresh", "t" * 101, contributed=COMMANDS)
    assert ui.commands() == [UiCommand(A, "tasks.clear", "t" * 100)]


@pytest.mark.parametrize(
    ("command_id", "title", "contributed", "message"),
    [
        (
            "tasks.delete",
            "",
            COMMANDS,
            "command_id 'tasks.delete' is not contributed by plugin 'acme.alpha'; its manifest "
            "contributes: tasks.clear, tasks.refresh",
        ),
        ("tasks.refresh", "", {}, "its manifest contributes: none"),
        ("Tasks Refresh", "", COMMANDS, "command_id: 'Tasks Refresh' is not a command or widget"),
        (7, "", COMMANDS, "command_id must be a string, not int"),
        ("tasks.refresh", None, COMMANDS, "title must be a string, not NoneType"),
        ("tasks.refresh", "x" * 101, COMMANDS, "title must be 1 to 100 characters long"),
        ("tasks.refresh", "", {"tasks.refresh": ""}, "title must be 1 to 100 characters long"),
    ],
)
def test_refused_command_changes_nothing(
    command_id: Any, title: Any, contributed: dict[str, str], message: str
) -> None:
    ui, changes = make()
    ui.register_command(A, "tasks.clear", "", contributed=COMMANDS)
    before, calls = state(ui), list(changes.calls)
    with pytest.raises(InvalidInputError) as info:
        ui.register_command(A, command_id, title, contributed=contributed)
    assert message in str(info.value)
    assert state(ui) == before
    assert changes.calls == calls


def test_unregister_command() -> None:
    ui, changes = make()
    ui.register_command(A, "tasks.clear", "", contributed=COMMANDS)
    ui.register_command(B, "tasks.clear", "", contributed=COMMANDS)
    assert ui.unregister_command(A, "tasks.clear") is True
    assert ui.unregister_command(A, "tasks.clear") is False
    assert ui.unregister_command(A, "tasks.refresh") is False
    assert ui.commands() == [UiCommand(B, "tasks.clear", "Clear tasks")]
    assert changes.calls == [(A, "command"), (B, "command"), (A, "command")]
    with pytest.raises(InvalidInputError, match="command_id must be a string, not list"):
        ui.unregister_command(B, ["tasks.clear"])  # type: ignore[arg-type]
    assert ui.commands() == [UiCommand(B, "tasks.clear", "Clear tasks")]


def test_check_contributed_names_the_argument() -> None:
    with pytest.raises(InvalidInputError, match="widget_id 'x' is not contributed by plugin"):
        check_contributed("widget_id", "x", WIDGETS, A)
    assert check_contributed("widget_id", "tasks.summary", WIDGETS, A) == "tasks.summary"


# --- widgets -------------------------------------------------------------------------------------


def test_update_widget_stores_a_copy_titled_from_the_manifest() -> None:
    ui, changes = make()
    data: dict[str, Any] = {"open": 3, "names": ["a", "b"], "pair": (1, 2)}
    widget = ui.update_widget(A, "tasks.summary", data, contributed=WIDGETS)
    assert widget == UiWidget(
        A, "tasks.summary", "Task summary", {"open": 3, "names": ["a", "b"], "pair": [1, 2]}, 1000.0
    )
    data["names"].append("changed later")
    assert ui.widgets()[0].data["names"] == ["a", "b"]
    assert ui.widgets()[0].data is not data

    ui.update_widget(B, "tasks.summary", None, contributed=WIDGETS)
    ui.update_widget(A, "tasks.summary", {"open": 4}, contributed=WIDGETS)
    assert [(w.plugin, w.data, w.updated_at) for w in ui.widgets()] == [
        (A, {"open": 4}, 1002.0),
        (B, None, 1001.0),
    ]
    assert [w.plugin for w in ui.widgets(B)] == [B]
    assert changes.calls == [(A, "widget"), (B, "widget"), (A, "widget")]


def test_widget_size_boundary() -> None:
    ui, changes = make(max_widget_bytes=12)
    ui.update_widget(A, "tasks.summary", "é" * 5, contributed=WIDGETS)  # 10 bytes + 2 quotes
    before, calls = state(ui), list(changes.calls)
    with pytest.raises(ResourceLimitExceededError) as info:
        ui.update_widget(A, "tasks.summary", "a" * 11, contributed=WIDGETS)
    assert (info.value.plugin, info.value.limit) == (A, "widget_bytes")
    assert "the widget data is 13 bytes as JSON; at most 12 are allowed" in str(info.value)
    assert state(ui) == before
    assert changes.calls == calls


@pytest.mark.parametrize(
    ("widget_id", "data", "message"),
    [
        (
            "tasks.other",
            1,
            "widget_id 'tasks.other' is not contributed by plugin 'acme.alpha'; its manifest "
            "contributes: tasks.summary",
        ),
        ("", 1, "widget_id: '' is not a command or widget id"),
        ("tasks.summary", object(), "data is not JSON (Object of type object"),
        ("tasks.summary", {"x": math.nan}, "data is not JSON (Out of range float"),
        ("tasks.summary", {1, 2}, "data is not JSON (Object of type set"),
    ],
)
def test_refused_widget_changes_nothing(widget_id: str, data: Any, message: str) -> None:
    ui, changes = make()
    ui.update_widget(A, "tasks.summary", {"kept": True}, contributed=WIDGETS)
    before, calls = state(ui), list(changes.calls)
    with pytest.raises(InvalidInputError) as info:
        ui.update_widget(A, widget_id, data, contributed=WIDGETS)
    assert message in str(info.value)
    assert state(ui) == before
    assert changes.calls == calls


def test_encode_data_is_compact_utf8_json() -> None:
    assert encode_data({"a": [1, None], "é": True}, 100, A) == '{"a":[1,null],"é":true}'.encode()


# --- change notifications and lifecycle ----------------------------------------------------------


def test_a_raising_on_change_is_logged_and_the_change_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(plugin: str, what: str) -> None:
        raise RuntimeError("front end is gone")

    ui = UiRegistry(on_change=broken)
    with caplog.at_level(logging.ERROR, logger="plugport.ui"):
        message = ui.post_message(A, "still posted")
        ui.register_command(A, "tasks.clear", "", contributed=COMMANDS)
        ui.update_widget(A, "tasks.summary", 1, contributed=WIDGETS)
    assert ui.messages() == [message]
    assert [c.id for c in ui.commands()] == ["tasks.clear"]
    assert [w.id for w in ui.widgets()] == ["tasks.summary"]
    records = [r for r in caplog.records if r.name == "plugport.ui"]
    assert [r.getMessage() for r in records] == [
        "on_change('acme.alpha', 'message') failed",
        "on_change('acme.alpha', 'command') failed",
        "on_change('acme.alpha', 'widget') failed",
    ]
    assert all(r.exc_info is not None for r in records)


def test_without_on_change_nothing_is_called() -> None:
    ui = UiRegistry()
    assert ui.post_message(A, "x").at > 0  # the default clock is wall time


def test_forget_drops_commands_and_widgets_but_keeps_messages() -> None:
    ui, changes = make()
    ui.post_message(A, "did things")
    for plugin in (A, B):
        ui.register_command(plugin, "tasks.clear", "", contributed=COMMANDS)
        ui.update_widget(plugin, "tasks.summary", plugin, contributed=WIDGETS)
    changes.calls.clear()

    ui.forget(A)
    assert [m.text for m in ui.messages(A)] == ["did things"]
    assert [c.plugin for c in ui.commands()] == [B]
    assert [w.plugin for w in ui.widgets()] == [B]
    assert changes.calls == [(A, "command"), (A, "widget")]

    before = state(ui)
    ui.forget(A)
    ui.forget("acme.nobody")
    assert state(ui) == before
    assert changes.calls == [(A, "command"), (A, "widget")]
