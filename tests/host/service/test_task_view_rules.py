"""The monitor's figures and the workflow graph's layout, from data alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from plugport.host.service._task_view_rules import graph_columns, percentile, task_stats

NOW = 10_000.0


def _record(**fields: Any) -> Any:
    base = {
        "plugin": "p",
        "type": "T",
        "state": "succeeded",
        "attempts": 1,
        "submitted_at": NOW - 10,
        "due_at": NOW - 10,
        "started_at": NOW - 9,
        "finished_at": NOW - 8,
        "error_kind": "",
    }
    return SimpleNamespace(**(base | fields))


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0


def test_stats_per_type() -> None:
    counts = {("p", "T", "queued"): 2, ("p", "T", "dead"): 1, ("q", "U", "running"): 1}
    recent = [
        _record(),
        _record(finished_at=NOW - 120, started_at=NOW - 121, due_at=NOW - 125),
        _record(state="dead", attempts=3, error_kind="timeout", finished_at=NOW - 1),
        _record(state="queued", started_at=None, finished_at=None, attempts=0),
        _record(submitted_at=NOW - 4000),  # older than the hour: left out
    ]
    [t, u] = task_stats(counts, recent, NOW)
    assert (t["plugin"], t["type"], u["type"]) == ("p", "T", "U")
    assert t["queue_depth"] == 2
    assert u["queue_depth"] == 1
    assert t["dead_letters"] == 1
    assert t["succeeded_last_minute"] == 1
    assert t["succeeded_last_hour"] == 2
    assert t["attempts_last_hour"] == 5
    assert t["failures"] == {"timeout": 1}
    assert t["wait_p95_s"] == 4.0
    assert t["run_p50_s"] == 1.0
    assert u["wait_p50_s"] is None


def test_graph_columns_put_each_step_right_of_what_it_needs() -> None:
    steps = [
        {"name": "d", "needs": ["b", "c"]},
        {"name": "a", "needs": []},
        {"name": "b", "needs": ["a"]},
        {"name": "c", "needs": ["a", "ghost"]},
        {"name": "e", "needs": ["a", "d"]},
    ]
    columns = [[s["name"] for s in c] for c in graph_columns(steps)]
    assert columns == [["a"], ["b", "c"], ["d"], ["e"]]
    assert graph_columns(steps)[1][1]["needs"] == ["a"]  # an unknown need is dropped


def test_a_cycle_does_not_loop() -> None:
    columns = graph_columns([{"name": "a", "needs": ["b"]}, {"name": "b", "needs": ["a"]}])
    assert sorted(s["name"] for c in columns for s in c) == ["a", "b"]
