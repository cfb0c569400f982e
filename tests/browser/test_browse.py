"""The home page as a phone and a desktop show it, in the real Chromium, over a marketplace the
size of the demo's (two dozen plugins, rated, downloaded this week, in every category): short
on a phone (compact cards, categories first), whole rows on a desktop, no plugin twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from plugport.manifest import CATEGORIES
from plugport.registry.db import make_engine, make_sessions
from plugport.registry.models import DailyStat, Plugin
from plugport.registry.services.catalog import today
from tests.browser.conftest import accessibility_problems, screenshot
from tests.registry.conftest import Registry, running
from tests.registry.test_search import seed

PHONE_HEIGHT_PX = 2_000
"""What the review asked for at 390 px wide (the page was 5,300 px)."""

_WORDS = (
    "slack",
    "csv",
    "chart",
    "mail",
    "jira",
    "github",
    "metrics",
    "backup",
    "translate",
    "invoice",
    "calendar",
    "weather",
)


def _demo(registry: Registry) -> None:
    engine = registry.engine
    day = today()
    for n in range(24):
        word = _WORDS[n % len(_WORDS)]
        name = f"demo.{word}-{n}"
        plugin_id = seed(
            engine,
            name,
            display_name=f"{word.title()} Helper {n}",
            description=(
                f"Connects your application to {word} and keeps everything in step, with "
                "retries, a settings form and a dashboard widget for the numbers."
            ),
            categories=[CATEGORIES[n % len(CATEGORIES)]],
            tags=[word, "demo"],
        )
        with make_sessions(engine).begin() as session:
            session.execute(
                update(Plugin)
                .where(Plugin.id == plugin_id)
                .values(downloads=1000 - n * 10, rating_count=3 + n % 4, rating_sum=(3 + n % 4) * 4)
            )
            if n % 2 == 0:
                session.add(
                    DailyStat(plugin_id=plugin_id, version="1.0.0", day=day, downloads=50 - n)
                )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root: Path = tmp_path_factory.mktemp("demo")
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite'}")
    try:
        with running(engine, root / "data") as registry:
            _demo(registry)
            yield registry
    finally:
        engine.dispose()


_CARDS = """() => Array.from(document.querySelectorAll("main [data-testid=plugin-card]"))
  .map(c => c.dataset.name)"""
_ROWS = """() => Array.from(document.querySelectorAll(".grid-home")).map(grid => {
  const tops = Array.from(grid.children).map(c => Math.round(c.getBoundingClientRect().top));
  const perRow = {};
  for (const top of tops) perRow[top] = (perRow[top] || 0) + 1;
  return Object.values(perRow);
})"""


def test_the_home_page_is_short_on_a_phone(browser: Any, demo: Registry) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(demo.url)
        height = page.evaluate("() => document.documentElement.scrollHeight")
        screenshot(page, "home-phone")
        print(f"home page height at 390 px: {height} px")
        assert height <= PHONE_HEIGHT_PX, f"the home page is {height} px tall at 390 px"
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        cards = page.evaluate(_CARDS)
        assert len(cards) == 12
        assert len(set(cards)) == len(cards)  # no plugin twice
        # the categories are on the first screen, before any section
        nav_top = page.locator("#categories").bounding_box()["y"]
        assert nav_top < 844
        assert nav_top < page.locator("#featured").bounding_box()["y"]
        assert accessibility_problems(page) == []
    finally:
        context.close()


@pytest.mark.parametrize(("width", "columns"), [(1280, 4), (800, 2), (390, 1)])
def test_home_sections_fill_whole_rows(
    browser: Any, demo: Registry, width: int, columns: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(demo.url)
        rows = page.evaluate(_ROWS)
        assert len(rows) == 3, rows
        for section in rows:
            assert section == [columns] * (4 // columns), (width, rows)
        if width == 1280:
            screenshot(page, "home-desktop")
    finally:
        context.close()


def test_a_category_page_and_a_misspelt_search_in_the_browser(page: Any, demo: Registry) -> None:
    page.goto(demo.url)
    page.click("#categories a[data-category=data]")
    page.wait_for_url("**/categories/data")
    assert page.locator("#results [data-testid=plugin-card]").count() > 0
    page.select_option("#filter-sort", "rating")  # as-you-type: the results and the URL
    page.wait_for_function("() => location.search === '?sort=rating'")
    assert page.url.endswith("/categories/data?sort=rating")
    page.goto(demo.url + "/search?q=slak")
    assert page.locator("[data-testid=corrected-q]").inner_text() == "slack"
    assert page.locator("#results [data-testid=plugin-card]").count() == 2
    assert accessibility_problems(page) == []
