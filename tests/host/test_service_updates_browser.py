"""The updates flow in a real Chromium at phone width (375 px): the row's update badge leads to
the updates page, which shows what the new version adds (the raw secret read in red) and that
the registry gives no release notes; an auto-update policy set on the installation page holds
the update for consent; the operator ticks the consent, updates, and the progress view reaches
succeeded. Then a patch policy set on the updates page, and "Check now" applying a patch.
Skips, saying why, where Playwright or Chromium is missing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.host._plugins import write
from tests.host._service import (
    NETWORK,
    Market,
    Service,
    market_at,
    serving,
    settings_for,
    wait_for,
    write_alpha,
)
from tests.host.test_service_updates import GROWS

ADDED = [
    "+ network 'cdn.example.net'",
    "+ credential 'jira' sent to 'api.example.com'",
    "+ secrets.reveal 'jira'",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Market, Service]]:
    root = tmp_path_factory.mktemp("updates-browser")
    with market_at(root / "market") as market, serving(settings_for(root, market)) as service:
        yield market, service


def install(host: Service, token: str, ws: str, plugin: str, consent: list[str]) -> None:
    with host.client(token) as api:
        body = {"plugin": plugin, "consent": consent}
        started = api.post(f"/api/v1/workspaces/{ws}/installations", json=body)
        assert wait_for(api, ws, started.json())["state"] == "succeeded"


def wait_until_succeeded(page: Any) -> None:
    """The operation page has finished; it succeeded, or the failure says why."""
    finished = (
        "[data-testid=operation][data-state=succeeded], [data-testid=operation][data-state=failed]"
    )
    page.wait_for_selector(finished, timeout=30000)
    state = page.get_attribute("[data-testid=operation]", "data-state")
    assert state == "succeeded", page.inner_text("[data-testid=operation]")


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/workspaces")
    page.get_by_label("Workspace token").fill(token)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=installations]")


def test_update_notification_consent_and_progress(
    chromium: Any, service: tuple[Market, Service]
) -> None:
    market, host = service
    token = host.workspace("notified")
    src = market.root / "src"
    market.publish(write(src, "acme.delta", "1.0.0", extra=NETWORK))
    install(host, token, "notified", "acme.delta", ["network 'api.example.com'"])
    market.publish(write(src, "acme.delta", "1.1.0", extra=GROWS))
    page = chromium.new_page(viewport={"width": 375, "height": 800})
    try:
        sign_in(page, host.url, token)
        row = "[data-testid=installation-row][data-plugin='acme.delta']"
        assert page.inner_text(f"{row} [data-testid=update-badge]") == "update available: 1.1.0"
        assert page.inner_text("[data-testid=updates-link]") == "Updates (1 available)"

        # the installation page: a minor policy, which the update it adds permissions to holds
        page.click(f"{row} [data-testid=installation-link]")
        page.select_option("#auto-update-policy", "minor")
        with page.expect_navigation():
            page.click("#auto-update-save")
        assert page.inner_text("[data-testid=flash]") == (
            "Auto-update of acme.delta: minor and patch updates (1.x) on their own."
        )
        assert page.eval_on_selector("#auto-update-policy", "e => e.value") == "minor"

        page.click("[data-testid=nav-workspace]")
        page.click(f"{row} [data-testid=update-link]")
        card = "[data-testid=update][data-plugin='acme.delta']"
        page.wait_for_selector(card)
        assert page.inner_text(f"{card} [data-testid=current-version]") == "1.0.0"
        assert page.inner_text(f"{card} [data-testid=latest-version]") == "1.1.0"
        lines = page.locator(f"{card} [data-testid=added-line]").all_inner_texts()
        assert lines == ADDED
        danger = page.locator(f"{card} [data-testid=added-line][data-dangerous]")
        assert danger.all_inner_texts() == ["+ secrets.reveal 'jira'"]
        red, plain = (
            page.eval_on_selector(f"{card} {which}", "e => getComputedStyle(e).color")
            for which in ("[data-testid=added-line][data-dangerous]", "[data-testid=added-line]")
        )
        assert red != plain  # the raw secret read stands out
        assert page.inner_text(f"{card} [data-testid=changelog]") == (
            "The registry gives no changelog for this version."
        )

        with page.expect_navigation():
            page.click("#check-updates")
        page.wait_for_selector("[data-testid=last-check]")
        assert "waiting for your consent" in page.inner_text("[data-testid=flash]")
        status = page.inner_text(f"{card} [data-testid=auto-status]")
        assert "waiting for your consent: 1.1.0 adds network 'cdn.example.net'" in status
        assert page.get_attribute(card, "data-auto-state") == "consent"

        # unticked, the browser does not send it; ticked, the update runs with its progress
        before = page.url
        page.click(f"{card} [data-testid=update-button]")
        assert page.url == before
        page.check(f"{card} [data-testid=update-consent]")
        page.click(f"{card} [data-testid=update-button]")
        wait_until_succeeded(page)
        assert "acme.delta 1.1.0 (was 1.0.0)" in page.inner_text("[data-testid=operation-result]")
        with host.client(token) as api:
            row_now = api.get("/api/v1/workspaces/notified/installations/acme.delta").json()
        assert row_now["version"] == "1.1.0"

        page.click("[data-testid=nav-updates]")
        page.wait_for_selector("[data-testid=no-updates]")
        assert page.inner_text("[data-testid=no-updates]") == "Every plugin is up to date."
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide at a 375 px viewport"
    finally:
        page.close()


def test_set_a_patch_policy_on_the_updates_page_and_check_now(
    chromium: Any, service: tuple[Market, Service]
) -> None:
    market, host = service
    token = host.workspace("policies")
    install(host, token, "policies", "acme.alpha", [])
    page = chromium.new_page(viewport={"width": 375, "height": 800})
    try:
        sign_in(page, host.url, token)
        page.click("[data-testid=nav-updates]")
        policy_row = "[data-testid=policy-row][data-plugin='acme.alpha']"
        page.wait_for_selector(f"{policy_row}[data-policy=none]")
        page.select_option(f"{policy_row} [data-testid=policy-select]", "patch")
        with page.expect_navigation():
            page.click(f"{policy_row} [data-testid=policy-save]")
        page.wait_for_selector(f"{policy_row}[data-policy=patch]")
        assert page.inner_text("[data-testid=flash]") == (
            "Auto-update of acme.alpha: patch updates (1.2.x) on their own."
        )
        with host.client(token) as api:
            got = api.get("/api/v1/workspaces/policies/installations/acme.alpha/auto-update")
            assert got.json()["policy"] == "patch"

        market.publish(write_alpha(market.root / "src", "1.0.1"))
        with page.expect_navigation():
            page.click("#check-updates")
        page.wait_for_selector("[data-testid=last-check]")
        assert page.inner_text("[data-testid=flash]") == (
            "Checked: acme.alpha is updating to 1.0.1."
        )
        result = "[data-testid=check-result][data-plugin='acme.alpha'][data-state=apply]"
        page.click(f"{result} a")
        wait_until_succeeded(page)
        assert "acme.alpha 1.0.1 (was 1.0.0)" in page.inner_text("[data-testid=operation-result]")
        with host.client(token) as api:
            trail = api.get(
                "/api/v1/workspaces/policies/audit", params={"subject": "acme.alpha"}
            ).json()["items"]
        assert ("auto-update", "ok", "auto-update", "patch") in {
            (a["action"], a["outcome"], a["actor"], a["detail"].get("policy")) for a in trail
        }
    finally:
        page.close()
