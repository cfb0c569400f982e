"""What the tile shows, decided without I/O: which samples count, how the short history grows
and forgets, and the component tree for a reading. The plugin module only reads the host's
metrics and the stored history around these functions."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHARTS",
    "HISTORY_POINTS",
    "MIN_GAP_S",
    "RESET",
    "Reading",
    "clock_label",
    "gauge_max",
    "history_key",
    "level",
    "parse_history",
    "read",
    "record",
    "tile",
]

CHARTS = ("line", "bar", "gauge")
HISTORY_POINTS = 60
"""Readings kept per series: at the manifest's 30 s refresh, the last half hour."""
MIN_GAP_S = 5.0
"""Readings closer than this to the last one replace it: several tiles (or a reload) charting
the same series do not crowd the history with near-duplicates."""
RESET = "reset"

Point = tuple[float, float]  # (epoch seconds, value)


@dataclass(frozen=True)
class Reading:
    """The metric's current value: its matching samples summed."""

    value: float
    series: int


def history_key(metric: str, labels: Mapping[str, str]) -> str:
    """One history per metric and label filter, so tiles charting the same series share it.
    The filter is hashed: any labels fit the storage key's length."""
    if not labels:
        return f"history/{metric}"
    canonical = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    return f"history/{metric}/{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def read(
    samples: Iterable[Mapping[str, Any]], metric: str, labels: Mapping[str, str]
) -> Reading | None:
    """The sum of the samples named exactly ``metric`` whose labels include ``labels``; ``None``
    when none does. (The host answers a prefix: ``x_total`` would also bring ``x_total_sum``.)"""
    values = [
        float(sample["value"])
        for sample in samples
        if sample.get("name") == metric
        and all(sample.get("labels", {}).get(k) == v for k, v in labels.items())
        and isinstance(sample.get("value"), int | float)
        and math.isfinite(sample["value"])
    ]
    if not values:
        return None
    return Reading(_rounded(math.fsum(values)), len(values))


def parse_history(raw: Any) -> list[Point]:
    """The stored history, skipping entries that are not ``[seconds, value]`` (what a newer or
    broken version might have left), in time order."""
    if not isinstance(raw, list):
        return []
    points = []
    for entry in raw:
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in entry)
            and all(math.isfinite(x) for x in entry)
        ):
            points.append((float(entry[0]), float(entry[1])))
    return sorted(points)[-HISTORY_POINTS:]


def record(
    history: Sequence[Point], at: float, value: float, *, keep: int = HISTORY_POINTS
) -> list[Point]:
    """``history`` with the reading ``(at, value)`` added, the oldest dropped past ``keep``; a
    reading within :data:`MIN_GAP_S` of the last one replaces it."""
    points = list(history)
    if points and at - points[-1][0] < MIN_GAP_S:
        points.pop()
    points.append((float(round(at)), value))
    return points[-keep:]


def level(value: float, warn_at: float | None, bad_at: float | None) -> str | None:
    """``bad`` from ``bad_at`` up, else ``warn`` from ``warn_at`` up, else ``ok`` when a
    threshold is set; ``None`` without thresholds."""
    if bad_at is not None and value >= bad_at:
        return "bad"
    if warn_at is not None and value >= warn_at:
        return "warn"
    return "ok" if warn_at is not None or bad_at is not None else None


def gauge_max(config: Mapping[str, Any], history: Sequence[Point]) -> float:
    """The gauge's scale: ``max`` from the settings, else a round number above the alert (or
    warning) threshold and every recorded value."""
    if config.get("max") is not None:
        return float(config["max"])
    highest = max([v for _, v in history] + [config.get("bad_at") or 0, config.get("warn_at") or 0])
    return _round_up(highest * 1.25 if highest > 0 else 1.0)


def clock_label(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at))


def tile(config: Mapping[str, Any], history: Sequence[Point], now: Reading | None) -> Any:
    """The tile: the current value as a stat, the chart the settings ask for, and the reset
    button. ``history`` already holds ``now`` (when there is one)."""
    metric, labels = config["metric"], config.get("labels") or {}
    name = config.get("label") or metric
    unit = config.get("unit") or ""
    warn_at, bad_at = config.get("warn_at"), config.get("bad_at")
    children: list[Any] = [_stat(name, unit, history, now, warn_at=warn_at, bad_at=bad_at)]
    if now is None:
        children.append(
            {
                "type": "alert",
                "level": "info",
                "text": f"The host has no samples named {metric}{_selector(labels)} right now. "
                "Check the name against /metrics (a histogram's is NAME_count or NAME_sum).",
            }
        )
    children.append(_chart(config, name, unit, history, now))
    if history:
        children.append(
            {
                "type": "button",
                "label": "Reset history",
                "style": "secondary",
                "confirm": f"Forget {_readings(len(history))} of {name}?",
                "action": {"name": RESET},
            }
        )
    return {"type": "stack", "children": children}


def _stat(
    name: str,
    unit: str,
    history: Sequence[Point],
    now: Reading | None,
    *,
    warn_at: float | None,
    bad_at: float | None,
) -> dict[str, Any]:
    if now is None:
        return {"type": "stat", "label": name, "value": "no data"}
    stat: dict[str, Any] = {"type": "stat", "label": name, "value": now.value}
    if unit:
        stat["unit"] = unit
    if len(history) > 1:
        stat["delta"] = _rounded(history[-1][1] - history[-2][1])
    series = "1 series" if now.series == 1 else f"{now.series} series summed"
    stat["caption"] = f"{series}; {_readings(len(history))} of {HISTORY_POINTS} kept"
    found = level(now.value, warn_at, bad_at)
    if found is not None:
        stat["level"] = found
    return stat


def _chart(
    config: Mapping[str, Any],
    name: str,
    unit: str,
    history: Sequence[Point],
    now: Reading | None,
) -> dict[str, Any]:
    kind = config.get("chart", "line")
    if kind == "gauge":
        if now is None:
            return {"type": "text", "tone": "muted", "text": "No reading for the gauge yet."}
        gauge: dict[str, Any] = {
            "type": "chart",
            "kind": "gauge",
            "title": name,
            "value": now.value,
            "min": 0,
            "max": gauge_max(config, history),
        }
        if unit:
            gauge["unit"] = unit
        thresholds = [
            {"value": at, "level": band}
            for at, band in ((config.get("warn_at"), "warn"), (config.get("bad_at"), "bad"))
            if at is not None
        ]
        if thresholds:
            gauge["thresholds"] = [{"value": 0, "level": "ok"}, *thresholds]
        return gauge
    if not history:
        return {"type": "text", "tone": "muted", "text": "No readings recorded yet."}
    y: dict[str, Any] = {"label": name}
    if unit:
        y["unit"] = unit
    return {
        "type": "chart",
        "kind": kind,
        "title": f"{name}, last {len(history)} readings",
        "description": f"{name} at each dashboard refresh, oldest first (times in UTC).",
        "x": {"label": "Time (UTC)"},
        "y": y,
        "labels": [clock_label(at) for at, _ in history],
        "series": [{"name": name, "values": [value for _, value in history]}],
        "legend": False,
    }


def _readings(count: int) -> str:
    return "1 recorded reading" if count == 1 else f"{count} recorded readings"


def _selector(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _rounded(value: float) -> float:
    """Sums of floats drift (0.1 + 0.2): twelve significant digits are all a tile shows."""
    return float(f"{value:.12g}")


def _round_up(value: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above ``value`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(_rounded(step * power))
    return value  # unreachable: 10 * power > value
