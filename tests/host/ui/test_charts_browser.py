"""Charts in a real Chromium under the pages' own CSP: they draw, take their colours from
charts.css (so the CSP, which forbids inline styles, refuses nothing), hostile text shows as
text and runs nothing, and the data table opens from its summary. Skips, saying why, where
Playwright or Chromium is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from plugport._web import PAGE_HEADERS, STATIC_DIR
from plugport.host.ui import charts
from plugport.host.ui.charts import render_chart
from tests._uvicorn import serving

CHARTS_STATIC = Path(charts.__file__).parent / "static"
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
PALETTE = {
    1: "rgb(63, 117, 221)",
    2: "rgb(217, 102, 4)",
    3: "rgb(1, 151, 109)",
    4: "rgb(210, 44, 80)",
    5: "rgb(146, 90, 201)",
    6: "rgb(4, 156, 189)",
    7: "rgb(168, 141, 16)",
    8: "rgb(195, 78, 151)",
}


def _page_html() -> str:
    eight = {
        "kind": "line",
        "title": EVIL,
        "description": EVIL,
        "y": {"label": EVIL, "unit": EVIL},
        "labels": [EVIL, "b", "c"],
        "series": [{"name": EVIL + str(n), "values": [n, n + 1, None]} for n in range(8)],
    }
    bars = {
        "kind": "bar",
        "title": "Profit",
        "labels": ["Q1", "Q2"],
        "series": [{"name": "eur", "values": [5, -3]}],
    }
    cpu = {
        "kind": "gauge",
        "title": "CPU",
        "value": 72,
        "max": 100,
        "unit": "%",
        "thresholds": [{"value": 0, "level": "ok"}, {"value": 60, "level": "warn"}],
    }
    figures = "".join(
        f'<section id="{name}">{render_chart(chart, id_prefix=name)}</section>'
        for name, chart in (("eight", eight), ("bars", bars), ("cpu", cpu))
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>charts</title>'
        '<link rel="stylesheet" href="/static/plugport.css">'
        '<link rel="stylesheet" href="/ui/charts.css"></head>'
        f'<body><main class="container">{figures}</main></body></html>'
    )


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    app = FastAPI()
    html = _page_html()

    @app.get("/")
    def page() -> HTMLResponse:
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @app.get("/favicon.ico")
    def icon() -> Response:  # asked for by every page load; a 404 would be logged
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/ui", StaticFiles(directory=CHARTS_STATIC), name="ui")
    with serving(app) as url:
        yield url


def test_charts_draw_in_colour_under_the_csp_and_run_nothing(chromium: Any, site: str) -> None:
    page = chromium.new_page(viewport={"width": 900, "height": 900})
    complaints: list[str] = []
    dialogs: list[str] = []
    page.on(
        "console", lambda m: complaints.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        response = page.goto(site)
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        page.wait_for_load_state("load")

        strokes = page.eval_on_selector_all(
            "#eight .pp-series .pp-line", "els => els.map(e => getComputedStyle(e).stroke)"
        )
        assert strokes == [PALETTE[n] for n in range(1, 9)]
        bar = page.eval_on_selector("#bars .pp-bar", "e => getComputedStyle(e).fill")
        assert bar == PALETTE[1]
        warn = page.eval_on_selector(
            "#cpu .pp-gauge-value",
            "e => [getComputedStyle(e).stroke, getComputedStyle(document.body)"
            ".getPropertyValue('--warn').trim()]",
        )
        assert warn == ["rgb(122, 75, 0)", "#7a4b00"]  # the site's --warn
        grid = page.eval_on_selector("#eight .pp-grid line", "e => getComputedStyle(e).stroke")
        assert grid == "rgb(201, 206, 216)"  # the site's --border

        box = page.eval_on_selector("#eight svg", "e => e.getBoundingClientRect().width")
        assert box > 300
        assert page.inner_text("#eight figcaption") == EVIL
        assert page.evaluate("document.scripts.length") == 0
        assert page.evaluate("document.images.length") == 0

        table = "#eight .pp-chart-data table"
        assert not page.is_visible(table)
        page.click("#eight .pp-chart-data summary")
        assert page.is_visible(table)
        assert page.inner_text(f"{table} tbody tr:first-child th") == EVIL
    finally:
        page.close()
    assert not dialogs
    assert not complaints, complaints  # a refused inline style or script is logged here
