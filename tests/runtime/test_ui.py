"""The UI registry: messages in a bounded ring, commands limited to what the manifest contributes,
surface invalidations counted per contributed surface, the host's metrics read by prefix, change
notifications, and refusals that leave every part of the state as it was."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from plugport.errors import InvalidInputError
from plugport.runtime.capabilities.ui import (
    MAX_METRIC_SAMPLES,
    UiCommand,
    UiMessage,
    UiRegistry,
    check_contributed,
    check_level,
    metric_samples,
)

A, B = "acme.alpha", "acme.beta"
COMMANDS = {"tasks.refresh": "Refresh tasks", "tasks.clear": "Clear tasks"}
SURFACES = {"tasks.summary": "widget", "tasks.board": "page"}


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


def state(
    ui: UiRegistry,
) -> tuple[list[UiMessage], list[UiCommand], dict[tuple[str, str], int]]:
    return ui.messages(limit=10_000), ui.commands(), ui.versions()


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
        check_contributed("widget_id", "x", SURFACES, A)
    assert check_contributed("widget_id", "tasks.summary", SURFACES, A) == "tasks.summary"


# --- surfaces ------------------------------------------------------------------------------------


def test_invalidate_counts_versions_per_plugin_and_surface() -> None:
    ui, changes = make()
    assert ui.version(A, "tasks.summary") == 0
    assert ui.invalidate(A, "tasks.summary", contributed=SURFACES) == 1
    assert ui.invalidate(A, "tasks.summary", contributed=SURFACES) == 2
    assert ui.invalidate(B, "tasks.summary", contributed=SURFACES) == 1
    assert ui.invalidate(A, "tasks.board", contributed=SURFACES) == 1
    assert ui.version(A, "tasks.summary") == 2
    assert ui.version(B, "tasks.board") == 0
    assert ui.versions() == {
        (A, "tasks.board"): 1,
        (A, "tasks.summary"): 2,
        (B, "tasks.summary"): 1,
    }
    assert ui.versions(B) == {(B, "tasks.summary"): 1}
    assert ui.versions("acme.nobody") == {}
    # the front end learns which surface to render again
    assert changes.calls == [
        (A, "tasks.summary"),
        (A, "tasks.summary"),
        (B, "tasks.summary"),
        (A, "tasks.board"),
    ]


def test_the_registry_keeps_no_tree() -> None:
    """A plugin's push is only a signal: nothing it could send is stored or passed on."""
    ui, _ = make()
    ui.invalidate(A, "tasks.summary", contributed=SURFACES)
    assert not hasattr(ui, "widgets")
    assert not hasattr(ui, "update_widget")
    assert ui.versions() == {(A, "tasks.summary"): 1}


@pytest.mark.parametrize(
    ("surface_id", "contributed", "message"),
    [
        (
            "tasks.other",
            SURFACES,
            "surface_id 'tasks.other' is not contributed by plugin 'acme.alpha'; its manifest "
            "contributes: tasks.board, tasks.summary",
        ),
        ("tasks.summary", {}, "its manifest contributes: none"),
        ("", SURFACES, "surface_id: '' is not a command or widget id"),
        ("Tasks Summary", SURFACES, "surface_id: 'Tasks Summary' is not a command or widget id"),
        (None, SURFACES, "surface_id must be a string, not NoneType"),
        (["tasks.summary"], SURFACES, "surface_id must be a string, not list"),
    ],
)
def test_refused_invalidation_changes_nothing(
    surface_id: Any, contributed: dict[str, str], message: str
) -> None:
    ui, changes = make()
    ui.invalidate(A, "tasks.summary", contributed=SURFACES)
    before, calls = state(ui), list(changes.calls)
    with pytest.raises(InvalidInputError) as info:
        ui.invalidate(A, surface_id, contributed=contributed)
    assert message in str(info.value)
    assert state(ui) == before
    assert changes.calls == calls


# --- metrics -------------------------------------------------------------------------------------


def host_metrics() -> CollectorRegistry:
    registry = CollectorRegistry()
    calls = Counter("plugport_calls", "calls", ["plugin", "outcome"], registry=registry)
    calls.labels("acme.alpha", "ok").inc(3)
    calls.labels("acme.alpha", "error").inc()
    Gauge("plugport_active_plugins", "active", registry=registry).set(2)
    Histogram("other_seconds", "latency", registry=registry, buckets=(1.0,)).observe(0.5)
    return registry


def test_metrics_are_read_from_the_host_by_prefix() -> None:
    registry = host_metrics()
    ui = UiRegistry(metrics=registry.collect)
    found = ui.metrics("plugport_calls")
    assert found == [
        {"name": "plugport_calls_total", "labels": {"plugin": A, "outcome": "error"}, "value": 1.0},
        {"name": "plugport_calls_total", "labels": {"plugin": A, "outcome": "ok"}, "value": 3.0},
    ]
    names = {s["name"] for s in ui.metrics()}
    assert {"plugport_active_plugins", "other_seconds_count", "other_seconds_bucket"} <= names
    assert not [n for n in names if n.endswith("_created")]  # timestamps, not measurements
    assert ui.metrics("nothing_like_this") == []
    # read when asked, not copied at start
    Gauge("plugport_late", "late", registry=registry).set(7)
    assert ui.metrics("plugport_late") == [{"name": "plugport_late", "labels": {}, "value": 7.0}]


def test_without_a_metrics_source_there_are_no_metrics() -> None:
    assert UiRegistry().metrics("plugport") == []


def test_metric_samples_are_capped() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("many", "many", ["n"], registry=registry)
    for n in range(MAX_METRIC_SAMPLES + 50):
        gauge.labels(f"{n:04d}").set(n)
    found = metric_samples(registry.collect(), "many")
    assert len(found) == MAX_METRIC_SAMPLES
    assert found[0]["labels"] == {"n": "0000"}


@pytest.mark.parametrize("prefix", [None, 7, ["plugport"], "x" * 201])
def test_metrics_refuse_a_bad_prefix(prefix: Any) -> None:
    ui = UiRegistry(metrics=host_metrics().collect)
    with pytest.raises(InvalidInputError, match="prefix must be a string of at most 200"):
        ui.metrics(prefix)


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
        ui.invalidate(A, "tasks.summary", contributed=SURFACES)
    assert ui.messages() == [message]
    assert [c.id for c in ui.commands()] == ["tasks.clear"]
    assert ui.versions() == {(A, "tasks.summary"): 1}
    records = [r for r in caplog.records if r.name == "plugport.ui"]
    assert [r.getMessage() for r in records] == [
        "on_change('acme.alpha', 'message') failed",
        "on_change('acme.alpha', 'command') failed",
        "on_change('acme.alpha', 'tasks.summary') failed",
    ]
    assert all(r.exc_info is not None for r in records)


def test_without_on_change_nothing_is_called() -> None:
    ui = UiRegistry()
    assert ui.post_message(A, "x").at > 0  # the default clock is wall time


def test_forget_drops_commands_but_keeps_messages_and_versions() -> None:
    ui, changes = make()
    ui.post_message(A, "did things")
    for plugin in (A, B):
        ui.register_command(plugin, "tasks.clear", "", contributed=COMMANDS)
        ui.invalidate(plugin, "tasks.summary", contributed=SURFACES)
    changes.calls.clear()

    ui.forget(A)
    assert [m.text for m in ui.messages(A)] == ["did things"]
    assert [c.plugin for c in ui.commands()] == [B]
    assert changes.calls == [(A, "command")]
    # a page that rendered version 1 must see the restarted worker's next invalidation as new
    assert ui.versions() == {(A, "tasks.summary"): 1, (B, "tasks.summary"): 1}
    assert ui.invalidate(A, "tasks.summary", contributed=SURFACES) == 2
    changes.calls.clear()

    before = state(ui)
    ui.forget(B)
    ui.forget(B)
    ui.forget("acme.nobody")
    assert ui.commands() == []
    assert state(ui)[2] == before[2]
    assert changes.calls == [(B, "command")]


def test_replace_commands_sets_one_plugins_commands_exactly() -> None:
    ui, changes = make()
    old = ui.register_command(A, "tasks.clear", "", contributed=COMMANDS)
    other = ui.register_command(B, "tasks.clear", "", contributed=COMMANDS)
    new = ui.register_command(A, "tasks.refresh", "", contributed=COMMANDS)
    changes.calls.clear()

    ui.replace_commands(A, [new, other])  # another plugin's command is not A's to set
    assert ui.commands() == [new, other]
    assert changes.calls == [(A, "command")]

    ui.replace_commands(A, [new])  # nothing changes: no notification
    assert changes.calls == [(A, "command")]

    ui.replace_commands(A, [old])  # a rolled-back swap puts the old worker's back
    assert ui.commands() == [old, other]
    assert ui.commands(A)[0] is old
