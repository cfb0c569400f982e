"""A workspace operator in a real Chromium: from a plugin's marketplace page into a workspace
of the host service served beside the registry (``plugport serve --host-service``), consent to
its permissions, watch the install, then disable and uninstall it, each checked against the
host service's API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from plugport.cohost import bind, create_cohosted_app
from plugport.host.service import HostService
from plugport.registry.db import make_engine, make_sessions
from plugport.registry.services import tokens
from plugport.registry.settings import RegistrySettings
from tests._uvicorn import serving
from tests.browser._market import NOTIFIER, WORD_COUNT, seed
from tests.browser.conftest import accessibility_problems, screenshot
from tests.registry.conftest import Registry


@dataclass
class Site:
    url: str
    workspace: str
    token: str
    admin: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    settings = RegistrySettings(data_dir=root / "data")
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_cohosted_app(settings, url, app="myapp", app_version="2.4.0", telemetry=False)
    engine = make_engine(settings.sqlalchemy_url())  # the same SQLite file, for the seed
    try:
        with serving(app, sock):
            with make_sessions(engine).begin() as session:
                admin, _ = tokens.create_token(session, "root", ["admin"])
            seed(Registry(url, engine, admin, root / "data"), root)
            service: HostService = app.state.host_service
            service_admin, _ = service.store.create_token("admin", description="browser tests")
            _, token = service.create_workspace("shop", actor="tests")
            yield Site(url, "shop", token, service_admin)
    finally:
        sock.close()
        engine.dispose()


def api(site: Site) -> httpx.Client:
    return httpx.Client(
        base_url=f"{site.url}/api/v1/workspaces/{site.workspace}",
        headers={"Authorization": f"Bearer {site.token}"},
        timeout=30,
    )


def installed(site: Site) -> dict[str, str]:
    with api(site) as client:
        response = client.get("/installations")
    assert response.status_code == 200, response.text
    return {row["name"]: row["state"] for row in response.json()["items"]}


def test_install_from_the_marketplace_then_disable_and_uninstall(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/plugins/{WORD_COUNT}")
    page.click("#install-into-workspace")
    page.wait_for_url(re.compile(r"/workspaces\?install="))
    assert WORD_COUNT in page.inner_text("[data-testid=install-pending]")
    assert accessibility_problems(page) == []
    page.get_by_label(re.compile("token", re.IGNORECASE)).fill("pph_wrong")
    page.click("#signin-button")
    assert page.locator("[data-testid=signin-error]").is_visible()
    page.get_by_label(re.compile("token", re.IGNORECASE)).fill(site.token)
    page.click("#signin-button")

    page.wait_for_url(re.compile(f"/workspaces/{site.workspace}/install"))
    lines = page.locator("[data-testid=permission-line]").all_inner_texts()
    assert any("64 KiB" in line for line in lines), lines
    screenshot(page, "workspace-consent")
    assert accessibility_problems(page) == []
    assert installed(site) == {}  # nothing happens before consent
    page.check("#consent")
    page.click("#install-button")
    page.wait_for_selector("[data-testid=operation][data-state=succeeded]", timeout=60_000)
    screenshot(page, "workspace-installed")
    assert installed(site)[WORD_COUNT] in {"active", "inactive"}

    page.click("#back-to-workspace")
    row = page.locator(f"[data-testid=installation-row][data-plugin='{WORD_COUNT}']")
    row.wait_for()
    row.locator("button[data-action=disable]").click()
    page.wait_for_selector(
        f"[data-testid=installation-row][data-plugin='{WORD_COUNT}'][data-state=disabled]"
    )
    assert installed(site)[WORD_COUNT] == "disabled"
    # the audit trail below follows the change made in place
    page.wait_for_selector(
        f"[data-testid=audit-row][data-action=disable][data-subject='{WORD_COUNT}']"
    )
    screenshot(page, "workspace")
    assert accessibility_problems(page) == []

    page.on("dialog", lambda dialog: dialog.accept())  # "uninstall?" may be confirmed
    row.locator("button[data-action=uninstall]").click()
    page.wait_for_selector(
        f"[data-testid=installation-row][data-plugin='{WORD_COUNT}']", state="detached"
    )
    assert WORD_COUNT not in installed(site)
    with api(site) as client:
        actions = [a["action"] for a in client.get("/audit").json()["items"]]
    assert {"install", "disable", "uninstall"} <= set(actions), actions


def test_search_the_marketplace_from_the_workspace_without_javascript(
    browser: Any, site: Site
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/workspaces")
        page.get_by_label(re.compile("token", re.IGNORECASE)).fill(site.token)
        page.click("#signin-button")
        page.wait_for_url(re.compile(f"/workspaces/{site.workspace}$"))
        page.fill("#q", "slack")
        page.click("#search-button")
        result = page.locator(f"[data-testid=search-result][data-plugin='{NOTIFIER}']")
        result.wait_for()
        result.locator("[data-testid=install-link]").click()
        page.wait_for_url(re.compile("/install"))
        lines = page.locator("[data-testid=permission-line]").all_inner_texts()
        assert any("hooks.slack.com" in line for line in lines), lines
        page.click("#install-button")  # without ticking consent: refused, nothing installed
        assert NOTIFIER not in installed(site)
    finally:
        context.close()
