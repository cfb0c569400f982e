"""The host service's pages in a real Chromium at phone width (375 px), with their script:
sign in from the keyboard, install with consent while the progress view polls, and disable a
plugin in place. Skips, saying why, where Playwright or Chromium is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.host._service import Market, Service, market_at, serving, settings_for, wait_for


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Market, Service]]:
    root = tmp_path_factory.mktemp("browser")
    with market_at(root / "market") as market, serving(settings_for(root, market)) as service:
        yield market, service


def test_install_and_disable_at_phone_width(chromium: Any, service: tuple[Market, Service]) -> None:
    _, host = service
    token = host.workspace("phone")
    with host.client(token) as api:
        started = api.post("/api/v1/workspaces/phone/installations", json={"plugin": "acme.alpha"})
        assert wait_for(api, "phone", started.json())["state"] == "succeeded"
    page = chromium.new_page(viewport={"width": 375, "height": 800})
    try:
        page.goto(f"{host.url}/workspaces?install=acme.gamma")
        page.get_by_label("Workspace token").fill(token)
        page.keyboard.press("Enter")
        page.wait_for_selector("#install-button")
        assert page.inner_text("[data-testid=permission-line]") == "Connect to: api.example.com"
        page.check("#consent")
        page.click("#install-button")
        page.wait_for_selector("[data-testid=operation][data-state=succeeded]", timeout=30000)
        assert "acme.gamma 1.0.0" in page.inner_text("[data-testid=operation-result]")

        page.click("#back-to-workspace")
        row = "[data-testid=installation-row][data-plugin='acme.alpha']"
        page.wait_for_selector(row)
        before = page.url
        page.click("button[data-action=disable][data-plugin='acme.alpha']")
        page.wait_for_selector(f"{row}[data-state=disabled]")
        assert page.url == before  # done in place by the script, not by a reload
        assert page.inner_text("[data-testid=flash]") == "Disabled acme.alpha."
        assert page.is_visible(f"{row} button[data-action=enable]")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide at a 375 px viewport"
    finally:
        page.close()


def test_fill_and_save_settings_then_enable(chromium: Any, service: tuple[Market, Service]) -> None:
    _, host = service
    token = host.workspace("tuning")
    with host.client(token) as api:
        body = {"plugin": "acme.tuned", "consent": ["config"]}
        started = api.post("/api/v1/workspaces/tuning/installations", json=body)
        assert wait_for(api, "tuning", started.json())["state"] == "succeeded"
    page = chromium.new_page(viewport={"width": 375, "height": 800})
    try:
        page.goto(f"{host.url}/workspaces")
        page.get_by_label("Workspace token").fill(token)
        page.keyboard.press("Enter")
        row = "[data-testid=installation-row][data-plugin='acme.tuned']"
        page.wait_for_selector(f"{row} [data-testid=needs-settings]")
        assert not page.is_visible(f"{row} button[data-action=enable]")
        page.click(f"{row} [data-testid=settings-link]")
        page.wait_for_selector("#settings-form")
        kinds = page.eval_on_selector_all(
            "[data-testid=setting]", "els => els.map(e => [e.dataset.key, e.dataset.kind])"
        )
        assert dict(kinds) == {
            "channel": "string",
            "mode": "enum",
            "retries": "integer",
            "tags": "json",
            "token": "string",
            "verbose": "boolean",
        }
        assert page.locator("[data-testid=setting][data-missing]").count() == 2

        page.get_by_label("channel").fill("x")  # too short: refused, nothing stored
        page.click("#save-settings")
        page.wait_for_selector("[data-testid=settings-error]")
        assert "config.channel" in page.inner_text("[data-testid=settings-error]")
        assert host.service.workspace("tuning").host.stored_settings("acme.tuned") == {}

        page.get_by_label("channel").fill("#ops")
        page.locator("input[type=password]").fill("a-long-secret-value")
        page.click("#save-settings")
        page.wait_for_selector(row)
        assert page.locator(f"{row} [data-testid=needs-settings]").count() == 0
        page.click(f"{row} button[data-action=enable]")
        page.wait_for_selector(f"{row}[data-state=active], {row}[data-state=inactive]")
        page.goto(f"{host.url}/workspaces/tuning/installations/acme.tuned/settings")
        assert "a-long-secret-value" not in page.content()
        assert page.inner_text("[data-testid=secret-state]").startswith("set")
    finally:
        page.close()
