"""The marketplace as a person uses it, in a real Chromium against a real registry: search as
you type, filter, open a plugin, sign in with a token and review it, approve a pending version
in the review queue; at desktop and phone widths, by keyboard too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plugport.registry.db import make_engine
from tests.browser._market import CHART, NOTIFIER, PENDING, WORD_COUNT, Market, seed
from tests.browser.conftest import accessibility_problems, screenshot
from tests.registry.conftest import running


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    root = tmp_path_factory.mktemp("market")
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite'}")
    try:
        with running(engine, root / "data") as registry:
            yield seed(registry, root)
    finally:
        engine.dispose()


def cards(page: Any) -> list[str]:
    return page.locator("#results [data-testid=plugin-card]").evaluate_all(
        "cards => cards.map(c => c.dataset.name)"
    )


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/signin")
    page.get_by_label(re.compile("token", re.IGNORECASE)).fill(token)
    page.click("#signin-submit")


def test_search_as_you_type_then_filter_and_sort(page: Any, market: Market) -> None:
    url = market.registry.url
    page.goto(url)
    assert page.locator("h1").count() == 1
    assert page.locator("#categories [data-testid=category]").count() >= 3
    screenshot(page, "home")

    page.goto(f"{url}/search")
    assert set(cards(page)) == {WORD_COUNT, NOTIFIER, CHART}  # the pending one is not public
    page.fill("#search-input", "slac")  # a prefix, typed: results follow without a submit
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results [data-testid=plugin-card]')]"
        ".map(c => c.dataset.name).join() === 'acme.slack-notifier'"
    )
    assert "q=slac" in page.url  # the URL follows, so the page can be shared or reloaded
    screenshot(page, "search")

    page.fill("#search-input", "")
    page.wait_for_function(
        "() => document.querySelectorAll('#results [data-testid=plugin-card]').length === 3"
    )
    page.locator("#filters").evaluate("details => details.open = true")
    page.select_option("#filter-category", "ui")
    page.click("#search-submit")
    page.wait_for_url(re.compile(r"category=ui"))
    assert cards(page) == [CHART]

    page.goto(f"{url}/search?sort=name")
    assert cards(page) == sorted([WORD_COUNT, NOTIFIER, CHART])
    page.goto(f"{url}/search?per_page=0")
    assert page.locator("[data-testid=search-error]").get_attribute("data-field") == "per_page"


def test_plugin_page_shows_what_an_installer_needs(page: Any, market: Market) -> None:
    page.goto(f"{market.registry.url}/search?q=slack")
    page.click(f"[data-testid=plugin-card][data-name='{NOTIFIER}'] [data-testid=plugin-link]")
    page.wait_for_url(re.compile(f"/plugins/{re.escape(NOTIFIER)}$"))
    assert page.inner_text("#plugin-title") == "Slack Notifier"
    assert page.inner_text("#install-command") == f"plugport install {NOTIFIER}"
    permissions = page.locator("[data-testid=permission]").all_inner_texts()
    assert any("hooks.slack.com" in line for line in permissions), permissions
    assert page.locator("[data-testid=version-row]").count() == 1
    assert page.locator("#downloads-chart svg").count() == 1
    screenshot(page, "plugin")


def test_sign_in_and_post_a_review(page: Any, market: Market) -> None:
    url = market.registry.url
    page.goto(f"{url}/plugins/{WORD_COUNT}")
    page.click("#signin-to-review")
    page.get_by_label(re.compile("token", re.IGNORECASE)).fill("ppt_not_a_real_token")
    page.click("#signin-submit")
    assert page.locator("#signin-error").is_visible()  # refused, and says so

    page.goto(f"{url}/signin")
    page.get_by_label(re.compile("token", re.IGNORECASE)).fill(market.reader)
    page.get_by_label(re.compile("display name", re.IGNORECASE)).fill("Rea Der")
    page.click("#signin-submit")
    page.goto(f"{url}/plugins/{WORD_COUNT}")
    assert page.get_attribute("#signed-in-as", "data-identity") == "reader"
    page.check("#stars-4")
    page.fill("#review-text", "Counts <b>words</b> well.")
    page.click("#review-submit")
    review = page.locator("[data-testid=review][data-author='Rea Der']")
    review.wait_for()
    assert review.get_attribute("data-stars") == "4"
    assert "Counts <b>words</b> well." in review.inner_text()  # shown as text, not markup
    assert page.get_attribute("#rating", "data-count") == "1"
    screenshot(page, "plugin-reviewed")
    reviews = httpx.get(f"{url}/api/v1/plugins/{WORD_COUNT}/reviews").json()
    assert [(r["author"], r["stars"]) for r in reviews["items"]] == [("Rea Der", 4)]


def test_approve_a_pending_version_in_the_review_queue(page: Any, market: Market) -> None:
    url = market.registry.url
    sign_in(page, url, market.reader)  # no review scope: the queue is refused
    response = page.goto(f"{url}/review")
    assert response is not None
    assert response.status == 403

    sign_in(page, url, market.reviewer)
    page.goto(f"{url}/review")
    item = page.locator(f"[data-testid=queue-item][data-name='{PENDING}']")
    item.locator("[data-testid=queue-link]").click()
    page.wait_for_url(re.compile(f"/review/{re.escape(PENDING)}/1.0.0$"))
    screenshot(page, "review-item")
    page.click("#approve")
    page.wait_for_url(re.compile("/review$"))
    assert page.locator(f"[data-testid=queue-item][data-name='{PENDING}']").count() == 0
    status = httpx.get(f"{url}/api/v1/plugins/{PENDING}/versions/1.0.0").json()["status"]
    assert status == "published"
    page.goto(f"{url}/search?q=pending")
    assert cards(page) == [PENDING]


def test_phone_width_and_keyboard(browser: Any, market: Market) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        for path, name in ((f"/plugins/{WORD_COUNT}", "plugin-phone"), ("/search", "search-phone")):
            page.goto(market.registry.url + path)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow} px at 375 px"
            screenshot(page, name)
        page.goto(market.registry.url)
        page.keyboard.press("Tab")  # the first stop is the skip link, then it moves focus
        focused = page.evaluate("() => document.activeElement.getAttribute('href')")
        assert focused is not None
        assert focused.startswith("#")
    finally:
        context.close()


def test_every_page_names_its_controls_and_orders_its_headings(page: Any, market: Market) -> None:
    url = market.registry.url
    paths = ["/", "/search?q=chart", f"/plugins/{WORD_COUNT}", "/namespaces/acme", "/signin"]
    found = {}
    for path in paths:
        page.goto(url + path)
        found[path] = accessibility_problems(page)
    sign_in(page, url, market.reviewer)
    for path in ("/review", f"/plugins/{CHART}"):
        page.goto(url + path)
        found[path] = accessibility_problems(page)
    assert found == {path: [] for path in found}


def test_the_accessibility_check_finds_what_it_looks_for(page: Any) -> None:
    page.set_content(
        "<h1>A</h1><h1>B</h1><h3>skipped</h3><input name=q><button></button>"
        "<img src=x.png><svg><rect/></svg>"
    )
    problems = accessibility_problems(page)
    assert (
        problems
        == [
            "no lang on <html>",
            "2 h1 elements",
            'H3 "skipped" after h1',
            "unlabelled input q",
            "nameless <button></button>",
            "img without alt: x.png",
            "svg without a title",
        ]
        or len(problems) == 7
    ), problems
