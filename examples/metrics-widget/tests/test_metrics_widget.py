"""plugport.metrics-widget: the tile's decisions without I/O, then the widget in a real sandboxed
worker, reading host metrics the test sets (``plugin.ui.set_metrics``) or the test runtime's
own, with its history in the real plugin storage. Trees are compared with the JSON files in
``tests/snapshots/`` (after a deliberate change: PLUGPORT_UPDATE_SNAPSHOTS=1, review the diff)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from metrics_widget.display import (
    HISTORY_POINTS,
    MIN_GAP_S,
    Reading,
    clock_label,
    gauge_max,
    history_key,
    level,
    parse_history,
    read,
    record,
    tile,
)

from plugport.components import ComponentError, check_tree
from plugport.testing import PluginHandle

WIDGET = "metrics.display"
METRIC = "plugport_plugin_calls_total"
SNAPSHOTS = Path(__file__).parent / "snapshots"
T0 = 1_780_000_000  # 2026-05-28 20:26:40 UTC: seeded readings, far before the test's own
SAMPLES = [
    {"name": METRIC, "labels": {"plugin": "acme.a", "kind": "hook", "outcome": "ok"}, "value": 40},
    {"name": METRIC, "labels": {"plugin": "acme.b", "kind": "hook", "outcome": "ok"}, "value": 2},
    {
        "name": METRIC,
        "labels": {"plugin": "acme.a", "kind": "hook", "outcome": "error"},
        "value": 3,
    },
    # Same prefix, other metrics: the host answers these too, the tile must not add them.
    {"name": f"{METRIC}_extra", "labels": {}, "value": 1000},
    {"name": "plugport_plugin_call_duration_seconds_sum", "labels": {}, "value": 7.5},
]
SEEDED = [[T0, 30.0], [T0 + 30, 36.0], [T0 + 60, 41.0]]


def assert_snapshot(tree: Any, name: str) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("PLUGPORT_UPDATE_SNAPSHOTS") == "1":
        path.write_text(json.dumps(tree, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path} is missing: run once with PLUGPORT_UPDATE_SNAPSHOTS=1"
    assert tree == json.loads(path.read_text())


def taken_now(tree: Any, before: float, after: float) -> Any:
    """``tree`` with the clock time of the reading the render just took replaced by
    ``"<now>"``, after checking it is the time of the render: the only part of a tree that
    depends on when the test ran."""
    allowed = {clock_label(t) for t in range(round(before), round(after) + 1)}
    for node in tree["children"]:
        if node.get("type") == "chart" and "labels" in node:
            assert node["labels"][-1] in allowed, (node["labels"][-1], allowed)
            node["labels"][-1] = "<now>"
    return tree


def render(plugin: PluginHandle, **kwargs: Any) -> Any:
    before = time.time()
    tree = plugin.ui.render(WIDGET, **kwargs)
    return taken_now(tree, before, time.time())


# --- decisions ----------------------------------------------------------------------------------


def test_only_samples_named_exactly_and_with_the_labels_count() -> None:
    assert read(SAMPLES, METRIC, {}) == Reading(45.0, 3)
    assert read(SAMPLES, METRIC, {"plugin": "acme.a"}) == Reading(43.0, 2)
    assert read(SAMPLES, METRIC, {"plugin": "acme.a", "outcome": "ok"}) == Reading(40.0, 1)
    assert read(SAMPLES, METRIC, {"plugin": "acme.zzz"}) is None
    assert read(SAMPLES, "plugport_plugin_call_duration_seconds", {}) is None  # only _sum exists
    assert read([{"name": "x", "value": 0.1}, {"name": "x", "value": 0.2}], "x", {}) == Reading(
        0.3, 2
    )


def test_the_history_keeps_the_last_sixty_readings_in_order() -> None:
    history: list[tuple[float, float]] = []
    for step in range(HISTORY_POINTS + 5):
        history = record(history, T0 + 30 * step, float(step))
    assert len(history) == HISTORY_POINTS
    assert history[0] == (T0 + 30 * 5, 5.0)
    assert history[-1] == (T0 + 30 * (HISTORY_POINTS + 4), float(HISTORY_POINTS + 4))
    assert [t for t, _ in history] == sorted(t for t, _ in history)


def test_a_reading_right_after_the_last_replaces_it() -> None:
    history = record([(T0, 1.0)], T0 + MIN_GAP_S - 0.4, 2.0)
    assert history == [(T0 + 5, 2.0)]  # rounded to the second
    assert record(history, T0 + 5 + MIN_GAP_S, 3.0) == [(T0 + 5, 2.0), (T0 + 10, 3.0)]


def test_a_stored_history_in_a_shape_it_did_not_write_is_read_leniently() -> None:
    assert parse_history(None) == []
    assert parse_history({"points": []}) == []
    assert parse_history([[T0 + 30, 2], "x", [T0, 1], [T0, True], [T0], [T0, float("nan")]]) == [
        (T0, 1.0),
        (T0 + 30, 2.0),
    ]
    assert len(parse_history([[T0 + i, i] for i in range(200)])) == HISTORY_POINTS


def test_levels_and_gauge_scale() -> None:
    assert level(5, None, None) is None
    assert [level(v, 10, 20) for v in (9.9, 10, 19.9, 20, 1e9)] == [
        "ok",
        "warn",
        "warn",
        "bad",
        "bad",
    ]
    assert level(30, None, 20) == "bad"
    assert gauge_max({"max": 12}, [(T0, 500.0)]) == 12.0
    assert gauge_max({"bad_at": 80}, [(T0, 10.0)]) == 100.0  # 80 * 1.25
    assert gauge_max({}, [(T0, 41.0)]) == 100.0  # 51.25 -> 100
    assert gauge_max({}, [(T0, 3.0)]) == 5.0
    assert gauge_max({}, []) == 1.0
    assert gauge_max({}, [(T0, 0.0)]) == 1.0


def test_history_keys_do_not_depend_on_label_order_and_stay_short() -> None:
    assert history_key(METRIC, {}) == f"history/{METRIC}"
    a = history_key(METRIC, {"plugin": "acme.a", "outcome": "ok"})
    assert a == history_key(METRIC, {"outcome": "ok", "plugin": "acme.a"})
    assert a != history_key(METRIC, {"plugin": "acme.a"})
    assert len(history_key("m" * 200, {"k": "v" * 200})) < 256


@pytest.mark.parametrize("chart", ["line", "bar", "gauge"])
def test_every_tile_the_builder_makes_is_a_valid_tree(chart: str) -> None:
    config = {"metric": METRIC, "chart": chart, "label": "<b>Calls</b>", "warn_at": 1, "bad_at": 2}
    for history, now in (([], None), ([(T0, 1.0)], Reading(1.0, 1)), ([(T0, 1.0)], None)):
        check_tree(tile(config, history, now))


# --- the widget in the sandbox ----------------------------------------------------------------


@pytest.mark.parametrize("chart", ["line", "bar"])
def test_history_charts(plugin: PluginHandle, chart: str) -> None:
    plugin.ui.set_metrics(SAMPLES)
    plugin.storage.seed({history_key(METRIC, {}): SEEDED})
    tree = render(plugin, config={"chart": chart, "label": "Plugin calls", "unit": "calls"})
    assert_snapshot(tree, chart)
    stored = plugin.storage.data[history_key(METRIC, {})]
    assert stored[:3] == SEEDED
    assert stored[3][1] == 45.0
    assert len(stored) == 4
    plugin.assert_only_declared()


def test_gauge_with_thresholds(plugin: PluginHandle) -> None:
    plugin.ui.set_metrics(SAMPLES)
    labels = {"plugin": "acme.a"}
    plugin.storage.seed({history_key(METRIC, labels): SEEDED})
    tree = render(
        plugin,
        config={
            "chart": "gauge",
            "labels": labels,
            "label": "acme.a calls",
            "warn_at": 40,
            "bad_at": 80,
        },
    )
    assert_snapshot(tree, "gauge")
    assert tree["children"][0]["level"] == "warn"  # 43 >= 40
    assert history_key(METRIC, {}) not in plugin.storage.data  # its own series' history only


def test_no_samples_says_so_and_records_nothing(plugin: PluginHandle) -> None:
    plugin.ui.set_metrics(SAMPLES)
    tree = render(plugin, config={"metric": "plugport_plugin_call_duration_seconds"})
    assert_snapshot(tree, "no-data")
    assert plugin.storage.data == {}


def test_reset_forgets_the_history_and_redraws_every_tile(plugin: PluginHandle) -> None:
    plugin.ui.set_metrics(SAMPLES)
    key = history_key(METRIC, {})
    plugin.storage.seed({key: SEEDED})
    assert plugin.ui.invalidated == {}
    tree = render(plugin, action="reset")
    assert_snapshot(tree, "reset")
    assert [v for _, v in plugin.storage.data[key]] == [45.0]
    assert plugin.ui.invalidated == {WIDGET: 1}
    plugin.ui.set_metrics([])  # reset while the metric is gone: nothing stored at all
    plugin.ui.render(WIDGET, action="reset")
    assert key not in plugin.storage.data
    assert plugin.ui.invalidated == {WIDGET: 2}


def test_the_stored_history_stays_bounded(plugin: PluginHandle) -> None:
    plugin.ui.set_metrics(SAMPLES)
    key = history_key(METRIC, {})
    full = [[T0 + 30 * i, float(i)] for i in range(HISTORY_POINTS)]
    plugin.storage.seed({key: full})
    tree = render(plugin)
    stored = plugin.storage.data[key]
    assert len(stored) == HISTORY_POINTS
    assert stored[:-1] == full[1:]
    assert stored[-1][1] == 45.0
    assert len(tree["children"][1]["labels"]) == HISTORY_POINTS


def test_the_runtime_s_own_counters_count_the_tile_s_renders(plugin: PluginHandle) -> None:
    """Without set_metrics the tile reads the test runtime's real metrics, as it reads the
    host's: its own renders are calls into a plugin."""
    config = {"labels": {"plugin": "plugport.metrics-widget"}, "chart": "bar"}
    plugin.ui.widget(WIDGET, config)  # counted once it has returned
    first = plugin.ui.widget(WIDGET, config)["children"][0]["value"]
    second = plugin.ui.widget(WIDGET, config)["children"][0]["value"]
    assert first >= 1
    assert second == first + 1


def test_settings_the_schema_refuses_never_reach_the_plugin(plugin: PluginHandle) -> None:
    with pytest.raises(ComponentError, match="'pie' is not one of"):
        plugin.ui.widget(WIDGET, {"chart": "pie"})
    with pytest.raises(ComponentError, match="does not match"):
        plugin.ui.widget(WIDGET, {"metric": "calls; DROP"})
    assert plugin.calls == []  # neither render called the plugin's handler
