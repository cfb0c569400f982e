"""What the tasks monitor shows, decided from data alone: per (plugin, type) figures from the
store's counts and the last hour's records (throughput, wait and run percentiles, attempts,
failures by kind, dead letters), and a workflow run's steps laid out in topological columns.
No I/O here, so the page, the API and the tests see the same numbers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["STATE_CLASSES", "graph_columns", "percentile", "task_stats"]

HOUR_S = 3600.0
MINUTE_S = 60.0
STATES = ("queued", "running", "succeeded", "dead", "cancelled", "rejected")
STATE_CLASSES = {
    "succeeded": "badge-ok",
    "done": "badge-ok",
    "running": "badge-warn",
    "queued": "",
    "pending": "",
    "waiting": "",
    "dead": "badge-bad",
    "failed": "badge-bad",
    "rejected": "badge-bad",
    "cancelled": "badge-warn",
    "skipped": "",
}
"""A state's badge class (the state's name is always shown as text too)."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0-100) of ``values``; ``None`` for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def task_stats(
    counts: Mapping[tuple[str, str, str], int],
    recent: Iterable[Any],
    now: float,
) -> list[dict[str, Any]]:
    """One row per (plugin, type) seen in ``counts`` (the store's ``(plugin, type, state) ->
    n``) or in ``recent`` (records submitted in the last hour, any state): counts by state
    (queue depth is ``queued`` + ``running``; ``dead`` are the dead letters), tasks that
    succeeded in the last minute and hour, wait (due to start) and run (start to end) p50/p95
    in seconds over the hour's records, their attempts, and their failures by ``error_kind``."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(plugin: str, task_type: str) -> dict[str, Any]:
        key = (plugin, task_type)
        if key not in rows:
            rows[key] = {
                "plugin": plugin,
                "type": task_type,
                "counts": dict.fromkeys(STATES, 0),
                "_waits": [],
                "_runs": [],
                "succeeded_last_minute": 0,
                "succeeded_last_hour": 0,
                "attempts_last_hour": 0,
                "failures": {},
            }
        return rows[key]

    for (plugin, task_type, state), n in counts.items():
        row(plugin, task_type)["counts"][state] = n
    for record in recent:
        if record.submitted_at < now - HOUR_S:
            continue
        found = row(record.plugin, record.type)
        found["attempts_last_hour"] += record.attempts
        if record.started_at is not None:
            found["_waits"].append(max(0.0, record.started_at - record.due_at))
            if record.finished_at is not None:
                found["_runs"].append(max(0.0, record.finished_at - record.started_at))
        if record.state == "succeeded" and record.finished_at is not None:
            if record.finished_at >= now - MINUTE_S:
                found["succeeded_last_minute"] += 1
            found["succeeded_last_hour"] += 1
        if record.state in ("dead", "rejected", "cancelled") and record.error_kind:
            failures = found["failures"]
            failures[record.error_kind] = failures.get(record.error_kind, 0) + 1
    result = []
    for key in sorted(rows):
        found = rows[key]
        waits, runs = found.pop("_waits"), found.pop("_runs")
        counts_of = found["counts"]
        found |= {
            "queue_depth": counts_of["queued"] + counts_of["running"],
            "dead_letters": counts_of["dead"],
            "wait_p50_s": percentile(waits, 50),
            "wait_p95_s": percentile(waits, 95),
            "run_p50_s": percentile(runs, 50),
            "run_p95_s": percentile(runs, 95),
        }
        result.append(found)
    return result


def graph_columns(steps: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
    """``steps`` (each with ``name`` and ``needs``) in columns: a step's column is one more
    than the deepest step it needs, so every edge points right. A ``needs`` naming no step is
    ignored here (the runner refuses such a workflow); a cycle, which the runner refuses too,
    puts its steps in the last column rather than looping."""
    names = {str(s["name"]) for s in steps}
    needs = {
        str(s["name"]): [str(n) for n in (s.get("needs") or ()) if str(n) in names] for s in steps
    }
    depth: dict[str, int] = {}

    def depth_of(name: str, seen: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        if name in seen:
            return len(names)  # a cycle
        found = 0
        for need in needs[name]:
            found = max(found, depth_of(need, seen | {name}) + 1)
        depth[name] = min(found, len(names))
        return depth[name]

    for name in needs:
        depth_of(name, frozenset())
    columns: list[list[dict[str, Any]]] = []
    for step in steps:
        column = depth[str(step["name"])]
        while len(columns) <= column:
            columns.append([])
        columns[column].append(dict(step) | {"needs": needs[str(step["name"])]})
    return [c for c in columns if c]
