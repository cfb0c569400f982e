"""Charts that plugins describe as data, drawn by the host as server-side SVG.

The rule this module protects: a chart component cannot carry code or a request into the host's
page. Every string from a plugin (title, names, labels, units) is escaped, stripped of characters
XML forbids and cut to a length; the output has no script, no event attribute, no ``style``
attribute (the page's CSP forbids inline styles), no ``href`` and no URL; colours come only from
CSS classes (``pp-series-N``, ``pp-gauge-LEVEL``) styled in ``static/charts.css``. The work is
linear in the data and bounded (8 series of 500 points), and the same input gives the same bytes,
so a page can be snapshot-tested.

Each chart is a ``<figure>``: the SVG (``role="img"``, named by its ``<title>`` and ``<desc>``), an
HTML legend, a "Show data" table with every value, and a ``<figcaption>``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from markupsafe import Markup, escape

from plugport.host.ui._chart_scale import (
    finite,
    format_number,
    format_plain,
    nice_ticks,
    with_unit,
)

__all__ = ["KINDS", "MAX_POINTS", "MAX_SERIES", "render_chart"]

KINDS = ("area", "bar", "gauge", "line")
MAX_SERIES = 8
MAX_POINTS = 500
MAX_THRESHOLDS = 16
LEVELS = ("ok", "warn", "bad")

_ID_PREFIX = re.compile(r"[a-z0-9-]{1,128}")
# C0/C1 controls, lone surrogates and the two non-characters: XML forbids or HTML rewrites them
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

_TITLE_CHARS = 200
_DESCRIPTION_CHARS = 1000
_NAME_CHARS = 100  # a series name in the legend and the table
_LABEL_CHARS = 200  # an x label in the table
_TICK_LABEL_CHARS = 16  # an x label under the axis
_AXIS_LABEL_CHARS = 60
_UNIT_CHARS = 16

_CHAR_WIDTH = 7.0  # estimated width of one character of the 12px axis font, in SVG units
_LABEL_GAP = 12.0  # between two x labels
_WIDTH, _HEIGHT = 480.0, 260.0
_POINT_MARKERS_UP_TO = 40  # more points than this get markers only where a point stands alone
_LEVEL_WORDS = {"ok": "OK", "warn": "Warning", "bad": "Bad"}
_KIND_WORDS = {"line": "Line", "bar": "Bar", "area": "Area"}


def render_chart(chart: Mapping[str, Any], *, id_prefix: str) -> Markup:
    """The chart as a ``<figure>`` of safe markup; ``id_prefix`` (``[a-z0-9-]``, at most 128
    characters) keeps its element ids unique on the page.

    The component is expected to have passed the host's schema; what the schema would refuse is
    tolerated where it can be (a bad number is a gap, extra series or points are dropped, a long
    text is cut) and raises ValueError naming the field where it cannot (kind, title, gauge max).
    """
    if not isinstance(id_prefix, str) or not _ID_PREFIX.fullmatch(id_prefix):
        raise ValueError("id_prefix: 1 to 128 characters from a-z, 0-9 and '-'")
    kind = chart.get("kind")
    if kind not in KINDS:
        raise ValueError(f"chart.kind: must be one of {', '.join(KINDS)}")
    title = _text(chart.get("title"), _TITLE_CHARS)
    if not title.strip():
        raise ValueError(f"chart.title: required, 1 to {_TITLE_CHARS} characters")
    description = _text(chart.get("description"), _DESCRIPTION_CHARS).strip()
    figure = _Gauge.parse(chart) if kind == "gauge" else _Cartesian.parse(chart, kind)
    return Markup(  # noqa: S704 - every piece of plugin text in it went through _e (escape)
        "".join(
            [
                f'<figure class="pp-chart pp-chart-{kind}">',
                figure.svg(id_prefix, title, description or figure.summary()),
                figure.legend(),
                _details(title, figure.table()),
                f'<figcaption class="pp-chart-title">{_e(title)}</figcaption>',
                "</figure>",
            ]
        )
    )


# -- text ---------------------------------------------------------------------------------------


def _text(value: object, limit: int) -> str:
    """A plugin's string made safe to place in XML text or a quoted attribute once escaped:
    forbidden characters become U+FFFD and the length is capped. Numbers (x labels may be
    numbers) read as written; anything else is empty."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = format_plain(value)
    if not isinstance(value, str):
        return ""
    return _UNSAFE_CHARS.sub("\ufffd", _cut(value, limit))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _e(text: str) -> str:
    """Escaped for text and double- or single-quoted attributes alike (& < > " ')."""
    return str(escape(text))


def _n(value: float) -> str:
    """An SVG coordinate with at most two decimals, written the same way every time."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _svg_open(id_prefix: str, title: str, description: str, width: float, height: float) -> str:
    return (
        f'<svg class="pp-chart-svg" role="img" aria-labelledby="{id_prefix}-title '
        f'{id_prefix}-desc" viewBox="0 0 {_n(width)} {_n(height)}">'
        f'<title id="{id_prefix}-title">{_e(title)}</title>'
        f'<desc id="{id_prefix}-desc">{_e(description)}</desc>'
    )


def _text_el(x: float, y: float, text: str, css: str, anchor: str = "middle") -> str:
    return f'<text class="{css}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}">{_e(text)}</text>'


def _details(title: str, rows: tuple[list[str], list[list[str]]]) -> str:
    """The data as a table inside a closed ``<details>``: the text alternative for every value,
    for screen readers and for anyone who wants the numbers."""
    head, body = rows
    parts = [
        '<details class="pp-chart-data"><summary>Show data</summary>',
        '<div class="pp-chart-table"><table>',
        f'<caption class="visually-hidden">Data: {_e(title)}</caption>',
        "<thead><tr>",
        *(f'<th scope="col">{_e(cell)}</th>' for cell in head),
        "</tr></thead><tbody>",
    ]
    for row in body:
        parts.append(f'<tr><th scope="row">{_e(row[0])}</th>')
        parts.extend(f"<td>{_e(cell)}</td>" for cell in row[1:])
        parts.append("</tr>")
    parts.append("</tbody></table></div></details>")
    return "".join(parts)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


# -- line, bar and area -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    name: str
    values: tuple[float | None, ...]  # None: a gap (null, or not a finite number)
    cells: tuple[str, ...]  # each value as the data table writes it


@dataclass(frozen=True)
class _Axis:
    label: str
    unit: str


@dataclass(frozen=True)
class _Cartesian:
    kind: str
    labels: tuple[str, ...]
    series: tuple[_Series, ...]
    x: _Axis
    y: _Axis
    y_min: float | None
    y_max: float | None
    stacked: bool
    show_legend: bool

    @classmethod
    def parse(cls, chart: Mapping[str, Any], kind: str) -> _Cartesian:
        raw_labels = chart.get("labels")
        labels = tuple(_text(label, _LABEL_CHARS) for label in _list(raw_labels)[:MAX_POINTS])
        series = []
        for index, raw in enumerate(_list(chart.get("series"))[:MAX_SERIES]):
            entry = raw if isinstance(raw, Mapping) else {}
            values = _list(entry.get("values"))[: len(labels)]
            values += [None] * (len(labels) - len(values))
            name = _text(entry.get("name"), _NAME_CHARS).strip() or f"Series {index + 1}"
            series.append(
                _Series(
                    name,
                    tuple(finite(v) for v in values),
                    tuple("no data" if finite(v) is None else format_plain(v) for v in values),
                )
            )
        y = _mapping(chart.get("y"))
        legend = chart.get("legend")
        return cls(
            kind=kind,
            labels=labels,
            series=tuple(series),
            x=_axis(chart.get("x")),
            y=_axis(y),
            y_min=finite(y.get("min")),
            y_max=finite(y.get("max")),
            stacked=kind in ("bar", "area") and chart.get("stacked") is True,
            show_legend=legend is True or (legend is None and len(series) > 1),
        )

    # the picture

    def svg(self, id_prefix: str, title: str, description: str) -> str:
        plot = _Plot.lay_out(self)
        parts = [_svg_open(id_prefix, title, description, _WIDTH, _HEIGHT), plot.grid()]
        if self.kind == "bar":
            parts.append(self._bars(plot))
        else:
            parts.append(self._lines(plot))
        parts.append(plot.axes(self))
        parts.append("</svg>")
        return "".join(parts)

    def _bars(self, plot: _Plot) -> str:
        count = len(self.labels)
        if not count or not self.series:
            return ""
        slot = plot.width / count
        group = slot * 0.8
        width = group if self.stacked else group / len(self.series)
        inset = min(1.0, width * 0.1)
        above = [0.0] * count  # running totals of a stack, upwards and downwards
        below = [0.0] * count
        parts = []
        for number, series in enumerate(self.series, start=1):
            parts.append(f'<g class="pp-series pp-series-{number}">')
            for i, value in enumerate(series.values):
                if value is None:
                    continue
                start = plot.left + i * slot + (slot - group) / 2
                if self.stacked:
                    totals = above if value >= 0 else below
                    base, totals[i] = totals[i], totals[i] + value
                    x = start
                else:
                    base = 0.0
                    x = start + (number - 1) * width
                y0, y1 = plot.y(base), plot.y(base + value)
                top, height = min(y0, y1), abs(y0 - y1)
                if height < 0.005:
                    continue
                parts.append(
                    f'<rect class="pp-bar" x="{_n(x + inset / 2)}" y="{_n(top)}" '
                    f'width="{_n(width - inset)}" height="{_n(height)}"/>'
                )
            parts.append("</g>")
        return "".join(parts)

    def _lines(self, plot: _Plot) -> str:
        count = len(self.labels)
        xs = [plot.x_at(i) for i in range(count)]
        lower = [0.0] * count  # the top of the stack so far (area, stacked)
        parts = []
        for number, series in enumerate(self.series, start=1):
            parts.append(f'<g class="pp-series pp-series-{number}">')
            base = list(lower) if self.stacked else [0.0] * count
            tops: list[float | None] = [
                None if v is None else (base[i] + v if self.stacked else v)
                for i, v in enumerate(series.values)
            ]
            runs = _runs(tops)
            if self.kind == "area":
                for run in runs:
                    upper = " L".join(f"{_n(xs[i])} {_n(plot.y(tops[i] or 0.0))}" for i in run)
                    back = " L".join(f"{_n(xs[i])} {_n(plot.y(base[i]))}" for i in reversed(run))
                    parts.append(f'<path class="pp-area" d="M{upper} L{back} Z"/>')
            lines = [
                "M" + " L".join(f"{_n(xs[i])} {_n(plot.y(tops[i] or 0.0))}" for i in run)
                for run in runs
                if len(run) > 1
            ]
            if lines:
                parts.append(f'<path class="pp-line" d="{" ".join(lines)}"/>')
            for run in runs:
                if count <= _POINT_MARKERS_UP_TO or len(run) == 1:
                    parts.extend(
                        f'<circle class="pp-point" cx="{_n(xs[i])}" '
                        f'cy="{_n(plot.y(tops[i] or 0.0))}" r="3"/>'
                        for i in run
                    )
            parts.append("</g>")
            if self.stacked:
                lower = [b + (v or 0.0) for b, v in zip(base, series.values, strict=True)]
        return "".join(parts)

    # the words

    def summary(self) -> str:
        kind = _KIND_WORDS[self.kind]
        kind = f"Stacked {kind.lower()}" if self.stacked else kind
        text = (
            f"{kind} chart of {_plural(len(self.series), 'series', 'series')} over "
            f"{_plural(len(self.labels), 'point')}"
        )
        values = [v for s in self.series for v in s.values if v is not None]
        if not values:
            return text + "; no values."
        name = self.y.label or "values"
        low, high = min(values), max(values)
        text += (
            f"; {name} from {format_number(low)} to {with_unit(format_number(high), self.y.unit)}"
        )
        missing = len(self.labels) * len(self.series) - len(values)
        if missing:
            text += f"; {_plural(missing, 'value')} missing"
        return text + "."

    def legend(self) -> str:
        if not self.show_legend or not self.series:
            return ""
        if self.kind == "line":
            mark = '<line class="pp-line" x1="2" y1="6" x2="22" y2="6"/>'
        else:
            mark = '<rect class="pp-swatch-box" x="4" y="1" width="16" height="10"/>'
        items = "".join(
            f'<li><svg class="pp-swatch pp-series-{number}" aria-hidden="true" '
            f'viewBox="0 0 24 12" width="24" height="12">{mark}</svg>{_e(series.name)}</li>'
            for number, series in enumerate(self.series, start=1)
        )
        return f'<ul class="pp-chart-legend">{items}</ul>'

    def table(self) -> tuple[list[str], list[list[str]]]:
        first = _axis_title(self.x) or "Label"
        unit = f" ({self.y.unit})" if self.y.unit else ""
        head = [first, *(s.name + unit for s in self.series)]
        body = [[label, *(s.cells[i] for s in self.series)] for i, label in enumerate(self.labels)]
        return head, body


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Indexes of the unbroken stretches between gaps: each one is drawn as its own line."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(i)
    if current:
        runs.append(current)
    return runs


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _axis(value: object) -> _Axis:
    axis = _mapping(value)
    return _Axis(_text(axis.get("label"), _AXIS_LABEL_CHARS), _text(axis.get("unit"), _UNIT_CHARS))


def _axis_title(axis: _Axis) -> str:
    if axis.label and axis.unit:
        return f"{axis.label} ({axis.unit})"
    return axis.label or (f"({axis.unit})" if axis.unit else "")


@dataclass(frozen=True)
class _Plot:
    """Where the data goes in the SVG: the plot rectangle, the y scale and its ticks."""

    kind: str
    count: int
    left: float
    top: float
    width: float
    height: float
    low: float
    high: float
    ticks: tuple[float, ...]
    tick_labels: tuple[str, ...]

    @classmethod
    def lay_out(cls, chart: _Cartesian) -> _Plot:
        low, high = _data_range(chart)
        y_min, y_max = chart.y_min, chart.y_max
        if y_min is not None:
            low = y_min
        if y_max is not None:
            high = y_max
        ticks = nice_ticks(low, high)
        if low < high:  # a bound the plugin set is kept exactly; the others round outwards
            low = low if y_min is not None else ticks[0]
            high = high if y_max is not None else ticks[-1]
        else:  # equal or inverted bounds: the widened ticks decide
            low, high = ticks[0], ticks[-1]
        slack = (high - low) * 1e-9
        shown = tuple(t for t in ticks if low - slack <= t <= high + slack)
        step = ticks[1] - ticks[0]
        tick_labels = tuple(with_unit(format_number(t, step=step), chart.y.unit) for t in shown)
        widest = max((len(t) for t in tick_labels), default=1)
        left = min(_WIDTH / 3, 12 + widest * _CHAR_WIDTH)
        top = 30.0 if chart.y.label else 12.0
        bottom = 44.0 if (chart.x.label or chart.x.unit) else 26.0
        return cls(
            kind=chart.kind,
            count=len(chart.labels),
            left=left,
            top=top,
            width=_WIDTH - left - 16,
            height=_HEIGHT - top - bottom,
            low=low,
            high=high,
            ticks=shown,
            tick_labels=tick_labels,
        )

    def y(self, value: float) -> float:
        """The SVG y of a value; values beyond the scale sit on its edge."""
        value = max(self.low, min(self.high, value))
        return self.top + (self.high - value) / (self.high - self.low) * self.height

    def x_at(self, index: int) -> float:
        """The SVG x of a category: bars sit in the middle of equal slots; lines and areas run
        from edge to edge (a single point stands in the middle)."""
        if self.kind == "bar":
            return self.left + (index + 0.5) * self.width / max(self.count, 1)
        if self.count == 1:
            return self.left + self.width / 2
        return self.left + index * self.width / (self.count - 1)

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def grid(self) -> str:
        right = self.left + self.width
        lines = "".join(
            f'<line x1="{_n(self.left)}" y1="{y}" x2="{_n(right)}" y2="{y}"/>'
            for y in (_n(self.y(t)) for t in self.ticks)
        )
        return f'<g class="pp-grid" aria-hidden="true">{lines}</g>'

    def axes(self, chart: _Cartesian) -> str:
        right = self.left + self.width
        parts = ['<g class="pp-axis pp-axis-y">']
        parts.append(
            f'<line x1="{_n(self.left)}" y1="{_n(self.top)}" '
            f'x2="{_n(self.left)}" y2="{_n(self.bottom)}"/>'
        )
        parts.extend(
            _text_el(self.left - 6, self.y(t) + 4, label, "pp-tick", "end")
            for t, label in zip(self.ticks, self.tick_labels, strict=True)
        )
        if chart.y.label:
            parts.append(_text_el(self.left, 16, chart.y.label, "pp-axis-label", "start"))
        parts.append('</g><g class="pp-axis pp-axis-x">')
        parts.append(
            f'<line x1="{_n(self.left)}" y1="{_n(self.bottom)}" '
            f'x2="{_n(right)}" y2="{_n(self.bottom)}"/>'
        )
        if self.low < 0 < self.high and chart.kind != "line":  # bars and areas grow from zero
            zero = self.y(0.0)
            parts.append(
                f'<line class="pp-zero" x1="{_n(self.left)}" y1="{_n(zero)}" '
                f'x2="{_n(right)}" y2="{_n(zero)}"/>'
            )
        parts.extend(self._x_labels(chart.labels))
        title = _axis_title(chart.x)
        if title:
            parts.append(_text_el(self.left + self.width / 2, _HEIGHT - 8, title, "pp-axis-label"))
        parts.append("</g>")
        return "".join(parts)

    def _x_labels(self, labels: Sequence[str]) -> list[str]:
        """Every k-th category's label, the smallest k whose labels neither overlap nor run off
        the picture (a label at an edge hangs inwards from its point instead)."""
        if not labels:
            return []
        short = [_cut(label, _TICK_LABEL_CHARS) for label in labels]
        widest = max(len(s) for s in short) * _CHAR_WIDTH + _LABEL_GAP
        every = math.ceil(len(labels) / max(1, int(self.width // widest)))
        while True:  # rarely more than two rounds, each cheaper than the last
            placed = [self._x_label(i, short[i]) for i in range(0, len(labels), every)]
            if every >= len(labels) or all(
                a.end + _LABEL_GAP <= b.start for a, b in itertools.pairwise(placed)
            ):
                break
            every += 1
        return [
            _text_el(p.x, self.bottom + 18, short[p.category], "pp-tick", p.anchor) for p in placed
        ]

    def _x_label(self, index: int, text: str) -> _Placed:
        x, size = self.x_at(index), len(text) * _CHAR_WIDTH
        if x - size / 2 < 2:
            return _Placed(index, x, "start", x, x + size)
        if x + size / 2 > _WIDTH - 2:
            return _Placed(index, x, "end", x - size, x)
        return _Placed(index, x, "middle", x - size / 2, x + size / 2)


class _Placed(NamedTuple):
    """An x label's category, anchor point and estimated extent."""

    category: int
    x: float
    anchor: str
    start: float
    end: float


def _data_range(chart: _Cartesian) -> tuple[float, float]:
    """The lowest and highest value the scale must show: stack totals when stacked, and zero for
    bars and areas, which grow from it."""
    values: list[float] = []
    if chart.stacked and chart.kind == "bar":
        for i in range(len(chart.labels)):
            column = [s.values[i] for s in chart.series]
            values.append(sum(v for v in column if v is not None and v > 0))
            values.append(sum(v for v in column if v is not None and v < 0))
    elif chart.stacked:
        for i in range(len(chart.labels)):
            total = 0.0
            for s in chart.series:
                total += s.values[i] or 0.0
                values.append(total)
    else:
        values = [v for s in chart.series for v in s.values if v is not None]
    if chart.kind != "line":
        values.append(0.0)
    if not values:
        return 0.0, 1.0
    return min(values), max(values)


# -- gauge ----------------------------------------------------------------------------------------

_GAUGE_WIDTH, _GAUGE_HEIGHT = 300.0, 190.0
_CX, _CY, _RADIUS, _BAND = 150.0, 150.0, 110.0, 22.0


@dataclass(frozen=True)
class _Threshold:
    value: float
    level: str


@dataclass(frozen=True)
class _Gauge:
    value: float | None
    cell: str
    low: float
    high: float
    unit: str
    thresholds: tuple[_Threshold, ...]

    @classmethod
    def parse(cls, chart: Mapping[str, Any]) -> _Gauge:
        high = finite(chart.get("max"))
        if high is None:
            raise ValueError("chart.max: a gauge needs a finite number")
        low = finite(chart.get("min"))
        thresholds = []
        for raw in _list(chart.get("thresholds"))[:MAX_THRESHOLDS]:
            entry = _mapping(raw)
            at, level = finite(entry.get("value")), entry.get("level")
            if at is not None and level in LEVELS:
                thresholds.append(_Threshold(at, str(level)))
        value = chart.get("value")
        return cls(
            value=finite(value),
            cell="no data" if finite(value) is None else format_plain(value),
            low=0.0 if low is None else low,
            high=high,
            unit=_text(chart.get("unit"), _UNIT_CHARS),
            thresholds=tuple(sorted(thresholds, key=lambda t: t.value)),
        )

    def fraction(self, value: float) -> float:
        """Where a value sits on the arc, 0 (min) to 1 (max), clamped; a scale without width
        puts everything at one end instead of dividing by zero."""
        if self.high <= self.low:
            return 1.0 if value >= self.high else 0.0
        return max(0.0, min(1.0, (value - self.low) / (self.high - self.low)))

    def clamped(self) -> float | None:
        if self.value is None:
            return None
        return max(min(self.low, self.high), min(max(self.low, self.high), self.value))

    def level(self) -> str | None:
        """The level of the last threshold at or below the (clamped) value, so the colour
        matches the arc; None below the first threshold, without thresholds or without value."""
        value = self.clamped()
        if value is None:
            return None
        found = None
        for threshold in self.thresholds:
            if threshold.value <= value:
                found = threshold.level
        return found

    def _formatted(self, value: float) -> str:
        return with_unit(format_number(value), self.unit)

    def svg(self, id_prefix: str, title: str, description: str) -> str:
        parts = [
            _svg_open(id_prefix, title, description, _GAUGE_WIDTH, _GAUGE_HEIGHT),
            f'<path class="pp-gauge-track" d="{_arc(0.0, 1.0, _RADIUS)}" '
            f'stroke-width="{_n(_BAND)}"/>',
        ]
        for index, threshold in enumerate(self.thresholds):
            start = self.fraction(threshold.value)
            end = self.fraction(
                self.thresholds[index + 1].value if index + 1 < len(self.thresholds) else self.high
            )
            if end > start:
                parts.append(
                    f'<path class="pp-gauge-band pp-gauge-{threshold.level}" '
                    f'd="{_arc(start, end, _RADIUS + _BAND / 2 + 6)}" stroke-width="6"/>'
                )
        level = self.level()
        if self.value is not None:
            share = self.fraction(self.value)
            if share > 0:
                parts.append(
                    f'<path class="pp-gauge-value pp-gauge-{level or "none"}" '
                    f'd="{_arc(0.0, share, _RADIUS)}" stroke-width="{_n(_BAND)}"/>'
                )
            reading = self._formatted(self.value)
        else:
            reading = "no value"
        parts.append(_text_el(_CX, _CY - 22, reading, "pp-gauge-reading"))
        if level:
            parts.append(_text_el(_CX, _CY, _LEVEL_WORDS[level], "pp-gauge-level"))
        parts.append(_text_el(_CX - _RADIUS, _CY + 28, self._formatted(self.low), "pp-tick"))
        parts.append(_text_el(_CX + _RADIUS, _CY + 28, self._formatted(self.high), "pp-tick"))
        parts.append("</svg>")
        return "".join(parts)

    def summary(self) -> str:
        scale = f"on a scale from {format_number(self.low)} to {self._formatted(self.high)}"
        if self.value is None:
            return f"Gauge with no reading {scale}."
        text = f"Gauge reading {self._formatted(self.value)} {scale}"
        if self.value > max(self.low, self.high):
            text += ", above the maximum"
        elif self.value < min(self.low, self.high):
            text += ", below the minimum"
        level = self.level()
        if level:
            text += f"; level {_LEVEL_WORDS[level].lower()}"
        return text + "."

    def legend(self) -> str:
        return ""

    def table(self) -> tuple[list[str], list[list[str]]]:
        unit = f" ({self.unit})" if self.unit else ""
        level = self.level()
        body = [
            ["Value", self.cell],
            ["Minimum", format_plain(self.low)],
            ["Maximum", format_plain(self.high)],
            ["Level", _LEVEL_WORDS[level] if level else "none"],
        ]
        body.extend(
            [f"{_LEVEL_WORDS[t.level]} from", format_plain(t.value)] for t in self.thresholds
        )
        return ["Reading", "Value" + unit], body


def _arc(start: float, end: float, radius: float) -> str:
    """An SVG path along the gauge's upper half-circle from fraction ``start`` to ``end``
    (0 is the left end, 1 the right end), drawn clockwise."""

    def point(share: float) -> str:
        angle = math.pi * (1.0 - share)
        return f"{_n(_CX + radius * math.cos(angle))} {_n(_CY - radius * math.sin(angle))}"

    return f"M{point(start)} A{_n(radius)} {_n(radius)} 0 0 1 {point(end)}"
