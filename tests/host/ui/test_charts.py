"""The chart renderer: each kind draws, hostile text stays text, gaps and negative bars and
single points draw right, gauges clamp and pick their level, the text alternative has every
value, the output is the same bytes every time, and the work stays bounded.

The output is parsed as XML (it is well-formed by design) and again with the HTML parser a
browser would use, and checked against an allowlist of elements and attributes, so anything a
change lets through that could run, fetch or restyle fails here."""

from __future__ import annotations

import copy
import itertools
import os
import re
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from plugport.host.ui.charts import MAX_POINTS, MAX_SERIES, render_chart

SNAPSHOTS = Path(__file__).parent / "snapshots"

ELEMENTS = {
    "figure", "svg", "title", "desc", "g", "line", "path", "rect", "circle", "text", "ul", "li",
    "details", "summary", "div", "table", "caption", "thead", "tbody", "tr", "th", "td",
    "figcaption",
}  # fmt: skip
ATTRIBUTES = {
    "class", "id", "role", "aria-labelledby", "aria-hidden", "viewBox", "width", "height",
    "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "d", "text-anchor", "stroke-width", "scope",
}  # fmt: skip

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "' onload='alert(1)",
    "]]><script>alert(2)</script><![CDATA[",
    "<!-- --><style>*{display:none}</style>",
    "<a href=\"javascript:alert(1)\" xlink:href='http://evil.example/x.svg'>x</a>",
    "&lt;script&gt; &amp; &#60;",
    "</text></svg><iframe src=//evil.example>",
]


def line_chart(**extra: Any) -> dict[str, Any]:
    chart: dict[str, Any] = {
        "type": "chart",
        "kind": "line",
        "title": "Requests per hour",
        "x": {"label": "hour"},
        "y": {"label": "requests", "unit": "req/s"},
        "labels": [f"{h:02d}:00" for h in range(24)],
        "series": [
            {"name": "api", "values": [3 + 5 * h for h in range(24)]},
            {"name": "web", "values": [120 - h for h in range(24)]},
        ],
    }
    chart.update(extra)
    return chart


def gauge(**extra: Any) -> dict[str, Any]:
    chart: dict[str, Any] = {
        "type": "chart",
        "kind": "gauge",
        "title": "CPU",
        "value": 72,
        "max": 100,
        "unit": "%",
        "thresholds": [
            {"value": 0, "level": "ok"},
            {"value": 60, "level": "warn"},
            {"value": 90, "level": "bad"},
        ],
    }
    chart.update(extra)
    return chart


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # noqa: S314 - our own output, no DTD or entities


def by_class(root: ET.Element, css: str) -> list[ET.Element]:
    return [e for e in root.iter() if css in (e.get("class") or "").split()]


def one(root: ET.Element, css: str) -> ET.Element:
    found = by_class(root, css)
    assert len(found) == 1, (css, len(found))
    return found[0]


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


class _Tags(HTMLParser):
    """What a browser's tokenizer sees: every start tag and its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_safe(markup: str) -> ET.Element:
    """Well-formed, only allowlisted elements and attributes, nothing that runs, fetches or
    styles inline, as both an XML and an HTML parser read it."""
    assert isinstance(markup, Markup)
    text = str(markup)
    text.encode("utf-8")  # no lone surrogate survives
    root = parse(text)
    for element in root.iter():
        assert element.tag in ELEMENTS, element.tag
        for name, value in element.attrib.items():
            assert name in ATTRIBUTES, name
            assert not re.search(r"url\(|javascript:|//|expression", value, re.I), (name, value)
    html = _Tags()
    html.feed(text)
    html.close()
    assert html.tags
    for tag, attrs in html.tags:
        assert tag.lower() in {t.lower() for t in ELEMENTS}, tag
        for name, _ in attrs:
            assert not name.startswith("on"), name
            assert name not in {"style", "href", "xlink:href", "src"}, name
    lowered = text.lower()
    for needle in ("<script", "<style", "<iframe", "<img", "<a ", "<!--", "<![cdata", "style="):
        assert needle not in lowered, needle
    return root


# -- each kind ------------------------------------------------------------------------------------


def test_a_line_chart_draws_one_line_per_series_with_axes_grid_legend_and_table() -> None:
    root = assert_safe(render_chart(line_chart(), id_prefix="w1"))
    assert root.tag == "figure"
    assert root.get("class") == "pp-chart pp-chart-line"
    svg = root.find("svg")
    assert svg is not None
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "w1-title w1-desc"
    assert svg.get("viewBox", "").startswith("0 0 ")
    assert [e.tag for e in svg][:2] == ["title", "desc"]
    assert [g.get("class") for g in by_class(root, "pp-series")] == [
        "pp-series pp-series-1",
        "pp-series pp-series-2",
    ]
    assert len(by_class(svg, "pp-line")) == 2
    assert by_class(svg, "pp-grid")
    assert by_class(svg, "pp-axis-x")
    assert by_class(svg, "pp-axis-y")
    ticks = [text_of(t) for t in by_class(one(svg, "pp-axis-y"), "pp-tick")]
    assert ticks == ["0 req/s", "50 req/s", "100 req/s", "150 req/s"]
    labels = [text_of(t) for t in by_class(svg, "pp-axis-label")]
    assert labels == ["requests", "hour"]
    legend = one(root, "pp-chart-legend")
    assert [text_of(li) for li in legend] == ["api", "web"]
    assert root[-1].tag == "figcaption"
    assert text_of(root[-1]) == "Requests per hour"


def test_the_generated_description_summarises_the_data() -> None:
    root = parse(render_chart(line_chart(), id_prefix="w1"))
    assert text_of(root.iter("desc").__next__()) == (
        "Line chart of 2 series over 24 points; requests from 3 to 120 req/s."
    )


def test_a_given_description_replaces_the_summary() -> None:
    root = parse(render_chart(line_chart(description="Traffic, by hour."), id_prefix="w1"))
    assert text_of(next(root.iter("desc"))) == "Traffic, by hour."


def test_a_bar_chart_draws_a_bar_per_value_side_by_side() -> None:
    chart = {
        "kind": "bar",
        "title": "Builds",
        "labels": ["mon", "tue", "wed"],
        "series": [{"name": "ok", "values": [4, 5, 6]}, {"name": "failed", "values": [1, 0, 2]}],
    }
    root = assert_safe(render_chart(chart, id_prefix="b"))
    assert root.get("class") == "pp-chart pp-chart-bar"
    first, second = by_class(root, "pp-series")
    assert len(by_class(first, "pp-bar")) == 3
    assert len(by_class(second, "pp-bar")) == 2  # a zero-height bar is not drawn
    xs = [float(r.get("x", "")) for r in by_class(first, "pp-bar")]
    assert xs == sorted(xs)
    # the two bars of a day stand side by side in the same slot
    a, b = by_class(first, "pp-bar")[0], by_class(second, "pp-bar")[0]
    assert float(b.get("x", "")) >= float(a.get("x", "")) + float(a.get("width", ""))


def test_stacked_bars_sit_on_each_other() -> None:
    chart = {
        "kind": "bar",
        "title": "Stacked",
        "stacked": True,
        "labels": ["a"],
        "series": [{"name": "x", "values": [2]}, {"name": "y", "values": [3]}],
    }
    root = assert_safe(render_chart(chart, id_prefix="s"))
    lower, upper = (by_class(g, "pp-bar")[0] for g in by_class(root, "pp-series"))
    assert lower.get("x") == upper.get("x")
    lower_top = float(lower.get("y", ""))
    upper_bottom = float(upper.get("y", "")) + float(upper.get("height", ""))
    assert upper_bottom == pytest.approx(lower_top, abs=0.02)
    assert "Stacked bar chart" in text_of(next(root.iter("desc")))


def test_an_area_chart_fills_down_to_zero_and_draws_its_edge() -> None:
    chart = {
        "kind": "area",
        "title": "Memory",
        "y": {"unit": "MB"},
        "labels": ["1", "2", "3"],
        "series": [{"name": "heap", "values": [10, 20, 15]}],
    }
    root = assert_safe(render_chart(chart, id_prefix="a"))
    area = one(root, "pp-area")
    assert area.get("d", "").endswith(" Z")
    one(root, "pp-line")  # the edge, drawn over the fill
    baseline = float(one(root, "pp-axis-x").find("line").get("y1", ""))  # type: ignore[union-attr]
    # the fill's lower edge runs along y = 0, which is the bottom of this scale
    points = re.findall(r"([\d.]+) ([\d.]+)", area.get("d", ""))
    assert [float(y) for _, y in points[3:]] == [baseline] * 3
    assert one(root, "pp-axis-y").findall("text")[0].text == "0 MB"


def test_a_gauge_draws_track_bands_value_and_reading() -> None:
    root = assert_safe(render_chart(gauge(), id_prefix="g"))
    assert root.get("class") == "pp-chart pp-chart-gauge"
    one(root, "pp-gauge-track")
    assert [b.get("class") for b in by_class(root, "pp-gauge-band")] == [
        "pp-gauge-band pp-gauge-ok",
        "pp-gauge-band pp-gauge-warn",
        "pp-gauge-band pp-gauge-bad",
    ]
    assert one(root, "pp-gauge-value").get("class") == "pp-gauge-value pp-gauge-warn"
    assert text_of(one(root, "pp-gauge-reading")) == "72%"
    assert text_of(one(root, "pp-gauge-level")) == "Warning"
    assert text_of(next(root.iter("desc"))) == (
        "Gauge reading 72% on a scale from 0 to 100%; level warning."
    )
    assert root.find("ul") is None  # no legend


# -- hostile text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("evil", HOSTILE)
def test_hostile_text_in_every_field_stays_text(evil: str) -> None:
    chart = line_chart(
        title=evil,
        description=evil,
        x={"label": evil, "unit": evil},
        y={"label": evil, "unit": evil},
        labels=[evil, evil + "2"],
        series=[{"name": evil, "values": [1, 2]}, {"name": evil + "b", "values": [3, None]}],
        legend=True,
    )
    for kind in ("line", "bar", "area"):
        root = assert_safe(render_chart({**chart, "kind": kind}, id_prefix="x"))
        texts = [text_of(e) for e in root.iter() if e.tag in {"title", "desc", "figcaption"}]
        assert texts == [evil, evil, evil]  # escaped on the way out, the same text on the way in
        assert evil in [text_of(li) for li in one(root, "pp-chart-legend")]
        assert evil in [text_of(th) for th in root.iter("th")]
    root = assert_safe(render_chart(gauge(title=evil, description=evil, unit=evil), id_prefix="x"))
    assert text_of(next(root.iter("title"))) == evil


def test_characters_xml_forbids_are_replaced_not_passed_through() -> None:
    evil = "a\x00b\x08c\x1bd\ud800e\ufffff\x85g"
    chart = line_chart(title=evil, labels=[evil], series=[{"name": evil, "values": [1]}])
    root = assert_safe(render_chart(chart, id_prefix="c"))
    assert text_of(next(root.iter("title"))) == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg"


def test_long_text_is_cut() -> None:
    chart = line_chart(
        title="t" * 5000, labels=["l" * 5000], series=[{"name": "n" * 5000, "values": [1]}]
    )
    root = assert_safe(render_chart(chart, id_prefix="c"))
    assert len(text_of(next(root.iter("title")))) == 200
    tick = by_class(one(root, "pp-axis-x"), "pp-tick")[0]
    assert text_of(tick) == "l" * 15 + "\u2026"
    assert len(str(render_chart(chart, id_prefix="c"))) < 5000


@pytest.mark.parametrize(
    "prefix", ["", "A", "a b", 'x"y', "a_b", "a.b", "é", "x" * 129, "a\n", "<s>", None, 5]
)
def test_a_bad_id_prefix_is_refused(prefix: Any) -> None:
    with pytest.raises(ValueError, match="id_prefix"):
        render_chart(line_chart(), id_prefix=prefix)


def test_ids_are_unique_per_prefix_and_referenced() -> None:
    page = (
        "<page>"
        + str(render_chart(line_chart(), id_prefix="w-1"))
        + str(render_chart(gauge(), id_prefix="w-2"))
        + "</page>"
    )
    root = parse(page)
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert ids == ["w-1-title", "w-1-desc", "w-2-title", "w-2-desc"]
    for svg in root.iter("svg"):
        if svg.get("role") == "img":
            for ref in svg.get("aria-labelledby", "").split():
                assert ref in ids


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "pie"}, "chart.kind"),
        ({"kind": None}, "chart.kind"),
        ({"title": ""}, "chart.title"),
        ({"title": "   "}, "chart.title"),
        ({"title": None}, "chart.title"),
    ],
)
def test_what_cannot_be_drawn_is_refused_by_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        render_chart(line_chart(**change), id_prefix="c")


def test_a_gauge_without_a_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match=r"chart\.max"):
        render_chart(gauge(max=None), id_prefix="g")


# -- data shapes ----------------------------------------------------------------------------------


def test_null_values_break_the_line_and_a_lone_point_gets_a_marker() -> None:
    values = [float(v) for v in range(60)]
    values[10] = None  # type: ignore[call-overload]
    values[12] = None  # type: ignore[call-overload]
    chart = line_chart(labels=[str(i) for i in range(60)], series=[{"name": "s", "values": values}])
    root = assert_safe(render_chart(chart, id_prefix="n"))
    path = one(root, "pp-line").get("d", "")
    assert path.count("M") == 2  # 0..9 and 13..59; 11 stands alone
    assert path.count("L") == 9 + 46
    points = by_class(root, "pp-point")
    assert len(points) == 1  # more than 40 points: markers only where a point stands alone
    rows = root.find("details/div/table/tbody")
    assert rows is not None
    assert [text_of(rows[i][1]) for i in (9, 10, 11, 12, 13)] == [
        "9",
        "no data",
        "11",
        "no data",
        "13",
    ]
    assert "2 values missing" in text_of(next(root.iter("desc")))


def test_non_numbers_are_gaps_not_crashes() -> None:
    odd = [float("nan"), float("inf"), True, "7", 10**400, None, 3]
    chart = line_chart(labels=list("abcdefg"), series=[{"name": "s", "values": odd}])
    root = assert_safe(render_chart(chart, id_prefix="n"))
    assert len(by_class(root, "pp-point")) == 1
    rows = root.find("details/div/table/tbody")
    assert rows is not None
    assert [text_of(r[1]) for r in rows] == ["no data"] * 6 + ["3"]


def test_negative_bars_hang_from_the_zero_line() -> None:
    chart = {
        "kind": "bar",
        "title": "Profit",
        "labels": ["Q1", "Q2"],
        "series": [{"name": "eur", "values": [5, -3]}],
    }
    root = assert_safe(render_chart(chart, id_prefix="p"))
    zero = float(one(root, "pp-zero").get("y1", ""))
    up, down = by_class(root, "pp-bar")
    assert float(up.get("y", "")) + float(up.get("height", "")) == pytest.approx(zero, abs=0.02)
    assert float(down.get("y", "")) == pytest.approx(zero, abs=0.02)
    assert float(up.get("height", "")) / float(down.get("height", "")) == pytest.approx(
        5 / 3, rel=0.01
    )
    ticks = [text_of(t) for t in by_class(one(root, "pp-axis-y"), "pp-tick")]
    assert ticks[0].startswith("-")
    assert "0" in ticks


def test_a_single_point_stands_in_the_middle() -> None:
    chart = line_chart(labels=["now"], series=[{"name": "s", "values": [42]}])
    root = assert_safe(render_chart(chart, id_prefix="one"))
    assert not by_class(root, "pp-line")
    point = one(root, "pp-point")
    axis = one(root, "pp-axis-x").find("line")
    assert axis is not None
    middle = (float(axis.get("x1", "")) + float(axis.get("x2", ""))) / 2
    assert float(point.get("cx", "")) == pytest.approx(middle, abs=0.01)
    assert "over 1 point;" in text_of(next(root.iter("desc")))


@pytest.mark.parametrize("kind", ["line", "bar", "area"])
@pytest.mark.parametrize("values", [[7, 7, 7], [0, 0, 0], [None, None, None], [-2, -2, -2]])
def test_flat_or_empty_data_draws_without_dividing_by_zero(kind: str, values: list[Any]) -> None:
    chart = line_chart(kind=kind, labels=["a", "b", "c"], series=[{"name": "s", "values": values}])
    root = assert_safe(render_chart(chart, id_prefix="f"))
    ticks = [text_of(t) for t in by_class(one(root, "pp-axis-y"), "pp-tick")]
    assert len(set(ticks)) == len(ticks) >= 2
    for element in root.iter():
        for name in ("x", "y", "cx", "cy", "width", "height"):
            if element.get(name) is not None:
                assert re.fullmatch(r"-?\d+(\.\d{1,2})?", element.get(name, "")), element.attrib


def test_no_labels_and_no_series_still_draw_an_empty_chart() -> None:
    root = assert_safe(render_chart({"kind": "line", "title": "Empty"}, id_prefix="e"))
    assert text_of(next(root.iter("desc"))) == "Line chart of 0 series over 0 points; no values."
    assert not by_class(root, "pp-series")


def test_y_bounds_set_by_the_plugin_are_kept_and_values_beyond_them_sit_on_the_edge() -> None:
    chart = line_chart(
        labels=["a", "b"],
        y={"min": 0, "max": 100, "unit": "%"},
        series=[{"name": "s", "values": [50, 150]}],
    )
    root = assert_safe(render_chart(chart, id_prefix="y"))
    ticks = [text_of(t) for t in by_class(one(root, "pp-axis-y"), "pp-tick")]
    assert ticks == ["0%", "20%", "40%", "60%", "80%", "100%"]
    top = float(one(root, "pp-axis-y").find("line").get("y1", ""))  # type: ignore[union-attr]
    assert float(by_class(root, "pp-point")[1].get("cy", "")) == top


def test_legend_defaults_to_more_than_one_series_and_can_be_forced() -> None:
    single = line_chart(series=[{"name": "only", "values": list(range(24))}])
    assert parse(render_chart(single, id_prefix="l")).find("ul") is None
    assert parse(render_chart({**single, "legend": True}, id_prefix="l")).find("ul") is not None
    assert parse(render_chart(line_chart(legend=False), id_prefix="l")).find("ul") is None


def test_x_labels_thin_out_so_they_neither_overlap_nor_run_off() -> None:
    for kind in ("line", "bar"):
        chart = line_chart(
            kind=kind,
            y={},
            labels=[f"2026-12-{d:02d} 00:00" for d in range(1, 31)] * 10,
            series=[{"name": "s", "values": list(range(300))}],
        )
        root = assert_safe(render_chart(chart, id_prefix="t"))
        ticks = by_class(one(root, "pp-axis-x"), "pp-tick")
        assert 2 <= len(ticks) <= 8
        width = float(root.find("svg").get("viewBox", "").split()[2])  # type: ignore[union-attr]
        extents = []
        for tick in ticks:  # 16 characters at the estimated 7 units each, placed by the anchor
            x, size = float(tick.get("x", "")), 16 * 7
            start = {"start": x, "middle": x - size / 2, "end": x - size}[
                tick.get("text-anchor", "")
            ]
            extents.append((start, start + size))
        assert extents[0][0] >= 0
        assert extents[-1][1] <= width
        for (_, end), (start, _) in itertools.pairwise(extents):
            assert end <= start, extents


# -- gauge ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (0, "ok"),
        (59.9, "ok"),
        (60, "warn"),
        (89, "warn"),
        (90, "bad"),
        (100, "bad"),
        (250, "bad"),
        (-5, "ok"),
    ],
)
def test_the_gauge_picks_the_level_of_the_last_threshold_reached(value: float, level: str) -> None:
    root = assert_safe(render_chart(gauge(value=value), id_prefix="g"))
    word = {"ok": "OK", "warn": "Warning", "bad": "Bad"}[level]
    assert text_of(one(root, "pp-gauge-level")) == word
    rows = {text_of(r[0]): text_of(r[1]) for r in root.iter("tr") if r[0].get("scope") == "row"}
    assert rows["Level"] == word
    if value > 0:
        assert one(root, "pp-gauge-value").get("class") == f"pp-gauge-value pp-gauge-{level}"


def test_out_of_range_readings_are_clamped_on_the_arc_but_told_as_they_are() -> None:
    high = parse(render_chart(gauge(value=130), id_prefix="g"))
    track_end = one(high, "pp-gauge-track").get("d", "").split()[-2:]
    assert one(high, "pp-gauge-value").get("d", "").split()[-2:] == track_end
    assert text_of(one(high, "pp-gauge-reading")) == "130%"
    assert "above the maximum" in text_of(next(high.iter("desc")))
    low = parse(render_chart(gauge(value=-40), id_prefix="g"))
    assert not by_class(low, "pp-gauge-value")  # nothing to fill below the minimum
    assert text_of(one(low, "pp-gauge-reading")) == "-40%"
    assert "below the minimum" in text_of(next(low.iter("desc")))


def test_the_arc_is_proportional_to_the_reading() -> None:
    root = parse(render_chart(gauge(value=50, min=0, max=200, thresholds=[]), id_prefix="g"))
    # a quarter of the way round a half circle centred at (150, 150) with radius 110
    end = one(root, "pp-gauge-value").get("d", "").split()[-2:]
    assert [float(v) for v in end] == pytest.approx([150 - 77.78, 150 - 77.78], abs=0.01)
    assert one(root, "pp-gauge-value").get("class") == "pp-gauge-value pp-gauge-none"


@pytest.mark.parametrize(
    "change",
    [
        {"thresholds": []},
        {"thresholds": None},
        {"value": 10, "thresholds": [{"value": 50, "level": "warn"}]},  # below the first one
        {"value": None},
        {"value": float("nan")},
        {"thresholds": [{"value": 1, "level": "<script>"}, {"value": "x", "level": "ok"}]},
    ],
)
def test_a_gauge_without_a_level_says_none(change: dict[str, Any]) -> None:
    root = assert_safe(render_chart(gauge(**change), id_prefix="g"))
    assert not by_class(root, "pp-gauge-level")
    assert "level" not in text_of(next(root.iter("desc")))
    for value in by_class(root, "pp-gauge-value"):
        assert value.get("class") == "pp-gauge-value pp-gauge-none"


@pytest.mark.parametrize(("low", "high"), [(5, 5), (10, 0), (0, 1e-300)])
def test_a_gauge_scale_without_width_does_not_divide_by_zero(low: float, high: float) -> None:
    assert_safe(render_chart(gauge(min=low, max=high, value=5), id_prefix="g"))


def test_unsorted_thresholds_are_applied_in_order() -> None:
    shuffled = [
        {"value": 90, "level": "bad"},
        {"value": 0, "level": "ok"},
        {"value": 60, "level": "warn"},
    ]
    assert render_chart(gauge(thresholds=shuffled), id_prefix="g") == render_chart(
        gauge(), id_prefix="g"
    )


# -- text alternative, determinism, bounds ---------------------------------------------------------


def test_the_data_table_holds_every_value_under_its_label_and_series() -> None:
    values = [[1.5, -2, 0.1, 3e-7, 12345678], [None, 7, 2.25, -0.5, 1e20]]
    chart = line_chart(
        labels=["a", "b", 3, 4.5, "e"],
        series=[{"name": "one", "values": values[0]}, {"name": "two", "values": values[1]}],
    )
    root = assert_safe(render_chart(chart, id_prefix="d"))
    table = root.find("details/div/table")
    assert table is not None
    assert root.find("details/summary").text == "Show data"  # type: ignore[union-attr]
    head = [text_of(th) for th in table.iter("th") if th.get("scope") == "col"]
    assert head == ["hour", "one (req/s)", "two (req/s)"]
    body = table.find("tbody")
    assert body is not None
    assert [text_of(row[0]) for row in body] == ["a", "b", "3", "4.5", "e"]
    for column, series in enumerate(values, start=1):
        for row, value in zip(body, series, strict=True):
            cell = text_of(row[column])
            assert cell == "no data" if value is None else float(cell) == value


def test_same_input_same_bytes() -> None:
    chart = line_chart()
    first = render_chart(chart, id_prefix="same")
    reordered = dict(reversed(list(copy.deepcopy(chart).items())))
    assert render_chart(reordered, id_prefix="same") == first
    assert render_chart(chart, id_prefix="same") == first
    numbers = re.findall(r'(?<![\w-])(?:x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)"', str(first))
    assert numbers
    assert all(re.fullmatch(r"-?\d+(\.\d{1,2})?", n) for n in numbers)


def test_work_is_bounded_and_extra_series_and_points_are_dropped() -> None:
    labels = [f"t{i}" for i in range(MAX_POINTS * 20)]
    series = [
        {"name": f"s{k}", "values": [float(i % 97) for i in range(MAX_POINTS * 20)]}
        for k in range(50)
    ]
    started = time.perf_counter()
    for kind in ("line", "bar", "area"):
        markup = render_chart(
            line_chart(kind=kind, labels=labels, series=series, stacked=True), id_prefix="big"
        )
        root = parse(markup)
        assert len(by_class(root, "pp-series")) == MAX_SERIES
        body = root.find("details/div/table/tbody")
        assert body is not None
        assert len(body) == MAX_POINTS
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0, elapsed  # about 0.1 s on a laptop; quadratic work would take minutes


# -- snapshots ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "chart"),
    [
        (
            "line",
            line_chart(
                labels=["00:00", "06:00", "12:00", "18:00"],
                series=[
                    {"name": "api", "values": [3, None, 80, 120]},
                    {"name": "web", "values": [40, 35, 30, 25]},
                ],
            ),
        ),
        ("gauge", gauge()),
    ],
)
def test_golden_snapshot(name: str, chart: dict[str, Any]) -> None:
    """The exact output, one tag a line for a readable diff; a deliberate change rewrites the
    file with PLUGPORT_UPDATE_SNAPSHOTS=1 and the diff is reviewed."""
    got = str(render_chart(chart, id_prefix=name)).replace("><", ">\n<") + "\n"
    path = SNAPSHOTS / f"{name}.html"
    if os.environ.get("PLUGPORT_UPDATE_SNAPSHOTS") == "1":
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run once with PLUGPORT_UPDATE_SNAPSHOTS=1"
    assert got == path.read_text(encoding="utf-8")
