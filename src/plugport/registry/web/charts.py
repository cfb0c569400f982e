"""Downloads per day as the geometry of an inline SVG bar chart: computed here, drawn by the
template, so the chart needs no script and its numbers are also given as a table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["Bar", "BarChart", "bar_chart"]


@dataclass(frozen=True)
class Bar:
    day: date
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    maximum: int
    total: int
    baseline: float
    """The y of the x axis."""
    labels: list[tuple[float, str, str]]
    """(x, text, text-anchor) under the axis: the first, middle and last day."""


def bar_chart(points: list[tuple[date, int]], *, width: int = 720, height: int = 200) -> BarChart:
    top, bottom, left, right = 16.0, 28.0, 36.0, 8.0
    plot_w, plot_h = width - left - right, height - top - bottom
    maximum = max((v for _, v in points), default=0)
    scale = plot_h / maximum if maximum else 0.0
    slot = plot_w / max(len(points), 1)
    gap = min(2.0, slot * 0.2)
    bars = []
    for n, (day, value) in enumerate(points):
        h = value * scale
        bars.append(
            Bar(day, value, round(left + n * slot + gap / 2, 2), round(top + plot_h - h, 2),
                round(slot - gap, 2), round(h, 2))
        )  # fmt: skip
    labels: list[tuple[float, str, str]] = []
    if points:
        last = len(points) - 1
        for n in sorted({0, len(points) // 2, last}):
            # the outer labels hang inwards from their bar, so neither is cut off at an edge
            anchor = "start" if n == 0 and last else "end" if n == last and last else "middle"
            x = left + n * slot if anchor == "start" else left + (n + 1) * slot
            x = x if anchor != "middle" else left + (n + 0.5) * slot
            labels.append((round(x, 2), points[n][0].strftime("%b %d"), anchor))
    return BarChart(width, height, bars, maximum, sum(v for _, v in points), top + plot_h, labels)
