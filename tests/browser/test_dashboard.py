"""The dashboard in a real Chromium against the host service, a real registry and real sandboxed
widgets: tiles load on their own (a hanging and a raising widget show their error tiles while
the others render), an action in a tile re-renders it, a plugin's invalidation refreshes it
without a reload, hostile text stays text (no dialog ever opens), and screenshots at 1280 px and
390 px are kept as artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import accessibility_problems, screenshot
from tests.host._service import Service
from tests.host._widgets import widget_service
from tests.host.service.test_dashboard import install

WIDGETS = [
    ("acme.counter", "counter.clicks"),
    ("acme.slow", "slow.wait"),
    ("acme.slow", "slow.boom"),
    ("acme.hostile", "hostile.all"),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with widget_service(tmp_path_factory.mktemp("dashboard-browser")) as service:
        yield service


@pytest.fixture(scope="module")
def board(service: Service) -> tuple[str, str]:
    token = service.workspace("wall")
    with service.client(token) as api:
        install(api, "wall", "acme.counter", "acme.slow", "acme.hostile")
        for plugin, widget in WIDGETS:
            api.post(
                "/api/v1/workspaces/wall/dashboard/tiles", json={"plugin": plugin, "widget": widget}
            ).raise_for_status()
    return "wall", token


def sign_in(page: Any, service: Service, token: str, ws: str) -> None:
    page.goto(f"{service.url}/workspaces")
    page.get_by_label("Workspace token").fill(token)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{service.url}/workspaces/{ws}")


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect  # the page fixture skipped already if it is missing

    return expect(locator)


def tile(ws_page: Any, widget: str) -> Any:
    return ws_page.locator(f"[data-testid=tile][data-widget='{widget}']")


def test_tiles_load_alone_act_and_refresh(
    page: Any, service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, service, token, ws)
    page.click("[data-testid=nav-dashboard]")
    counter = tile(page, "counter.clicks")
    counter.locator(".pp-stat-value").wait_for()
    assert counter.locator(".pp-stat-value").inner_text() == "0"
    # the raising widget shows its error while the hanging one is still waiting
    boom = tile(page, "slow.boom").locator("[data-testid=surface-error]")
    boom.wait_for()
    assert boom.get_attribute("data-kind") == "raised"
    hung = tile(page, "slow.wait").locator("[data-testid=surface-error]")
    hung.wait_for(timeout=15_000)
    assert hung.get_attribute("data-kind") == "timeout"
    assert "did not answer" in hung.inner_text()
    hostile = tile(page, "hostile.all")
    hostile.locator(".pp-heading").wait_for()
    assert "<script>alert(1)</script>" in hostile.locator(".pp-heading").inner_text()
    assert hostile.locator("script, img").count() == 0
    logo = counter.get_by_role("img", name="Counter logo").bounding_box()
    assert logo is not None
    assert logo["height"] < 10, logo  # its own size: a column flexbox does not stretch it

    counter.get_by_role("button", name="Add one").click()
    expect(counter.locator(".pp-stat-value")).to_have_text("1")
    counter.get_by_label("Set to").fill("-5")
    counter.get_by_role("button", name="Set").click()
    counter.locator(".pp-alert").wait_for()
    assert "must be a whole number" in counter.locator(".pp-alert").inner_text()

    counter.get_by_role("button", name="Details").click()
    dialog = page.get_by_role("dialog", name="Details")
    dialog.wait_for()
    assert "count is 1" in dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")

    # the plugin invalidates its widget: the tile re-renders without a reload
    with service.client(token) as api:
        bumped = api.post(
            f"/api/v1/workspaces/{ws}/installations/acme.counter/execute",
            json={"command": "counter.bump"},
        )
        assert bumped.status_code == 200, bumped.text
    expect(counter.locator(".pp-stat-value")).to_have_text("11", timeout=10_000)
    assert not dialogs, dialogs
    assert accessibility_problems(page) == []
    screenshot(page, "dashboard-light-1280")


def test_phone_width_stacks_the_tiles(
    browser: Any, service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        sign_in(page, service, token, ws)
        page.goto(f"{service.url}/workspaces/{ws}/dashboard")
        tile(page, "counter.clicks").locator(".pp-stat-value").wait_for()
        boxes = [
            tile(page, widget).bounding_box()
            for widget in ("counter.clicks", "slow.boom", "hostile.all")
        ]
        assert all(box["width"] <= 390 for box in boxes)
        assert boxes[0]["y"] < boxes[1]["y"] < boxes[2]["y"]  # one column
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways: {width} px"
        screenshot(page, "dashboard-light-390")
    finally:
        context.close()


def test_dark_theme_at_both_widths(browser: Any, service: Service, board: tuple[str, str]) -> None:
    """The dashboard in Plugport dark: the tiles, their charts and error boxes follow the
    theme's variables (no hard-coded light colours), kept as screenshots at both widths."""
    ws, token = board
    with service.client(token) as api:
        chosen = api.put(
            f"/api/v1/workspaces/{ws}/appearance", json={"theme": "plugport:dark", "mode": "dark"}
        )
        assert chosen.status_code == 200, chosen.text
    try:
        for width, height in ((1280, 900), (390, 844)):
            context = browser.new_context(viewport={"width": width, "height": height})
            try:
                page = context.new_page()
                sign_in(page, service, token, ws)
                page.goto(f"{service.url}/workspaces/{ws}/dashboard")
                counter = tile(page, "counter.clicks")
                counter.locator(".pp-stat-value").wait_for()
                tile(page, "slow.boom").locator("[data-testid=surface-error]").wait_for()
                background = page.evaluate(
                    "getComputedStyle(document.querySelector('.pp-tile')).backgroundColor"
                )
                body = page.evaluate("getComputedStyle(document.body).backgroundColor")
                assert background != "rgb(255, 255, 255)", background
                assert body != "rgb(247, 248, 250)", body
                screenshot(page, f"dashboard-dark-{width}")
            finally:
                context.close()
    finally:
        with service.client(token) as api:
            api.delete(f"/api/v1/workspaces/{ws}/appearance")
