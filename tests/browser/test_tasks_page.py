"""The tasks monitor in a real Chromium: sign in, open a workspace's tasks page, find a dead
task, press Retry and see it succeed (the service's queue runs it), then open a workflow run's
graph (a stand-in runner until the real one is wired in)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import accessibility_problems, screenshot
from tests.host._service import Service
from tests.host.service._tasks_service import FakeRunner, install_into, service_at, wait_until


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    with service_at(tmp_path_factory.mktemp("tasks-browser")) as service:
        token = install_into(service, "shop", tmp_path_factory.mktemp("plugins"))
        yield service, token


def test_retry_a_dead_task_and_open_a_workflow_graph(site: tuple[Service, str], page: Any) -> None:
    service, token = site
    api = "/api/v1/workspaces/shop"
    with service.client(token) as client:
        dead = client.post(f"{api}/tasks", json={"type": "ONCE"}).json()
        wait_until(client, f"{api}/tasks/{dead['id']}", lambda b: b["state"] == "dead")
    service.service.workspace("shop").host.workflows = FakeRunner()  # type: ignore[attr-defined]
    with service.client(token) as client:
        run = client.post(f"{api}/workflows/runs", json={"workflow": "x"}).json()

    page.goto(f"{service.url}/workspaces")
    page.get_by_label(re.compile("token", re.IGNORECASE)).fill(token)
    page.click("#signin-button")
    page.wait_for_url(re.compile("/workspaces/shop$"))
    page.click("[data-testid=tasks-link]")
    page.wait_for_url(re.compile("/workspaces/shop/tasks"))
    assert page.inner_text("[data-testid=dead-total]") == "1"
    row = page.locator(f"[data-testid=task-row][data-id='{dead['id']}']")
    assert row.get_attribute("data-state") == "dead"
    assert accessibility_problems(page) == []
    screenshot(page, "tasks-monitor")

    page.select_option("#state", "dead")
    page.click("#filter-button")
    page.wait_for_url(re.compile(r"state=dead"))
    page.locator(f"[data-testid=task-row][data-id='{dead['id']}'] a").click()
    page.wait_for_url(re.compile(f"/tasks/{dead['id']}$"))
    assert page.inner_text("[data-testid=task-state]") == "dead"
    assert "the first run of ONCE fails" in page.inner_text("[data-testid=task-error]")
    assert accessibility_problems(page) == []
    page.click("[data-testid=retry]")
    page.wait_for_selector("[data-testid=flash]")
    assert "is queued again" in page.inner_text("[data-testid=flash]")
    with service.client(token) as client:
        wait_until(client, f"{api}/tasks/{dead['id']}", lambda b: b["state"] == "succeeded")
    page.reload()
    assert page.inner_text("[data-testid=task-state]") == "succeeded"
    assert page.locator("[data-testid=retry]").count() == 0
    screenshot(page, "task-succeeded")

    page.click("#back-to-tasks")
    page.locator(f"[data-testid=run-row][data-id='{run['id']}'] a").click()
    page.wait_for_url(re.compile(f"/workflows/{run['id']}$"))
    graph = page.locator("[data-testid=workflow-graph]")
    assert graph.locator("[data-testid=step]").count() == 4
    assert graph.locator("[data-testid=edge]").count() == 4
    right = graph.locator("[data-testid=step][data-name=right]")
    assert right.get_attribute("data-state") == "dead"
    assert "dead" in (right.text_content() or "")
    assert accessibility_problems(page) == []
    screenshot(page, "workflow-run-graph")
