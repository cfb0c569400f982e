"""The tasks monitor pages: stats, the list with its state filter, a task's page with its
Retry button (refused without the page's CSRF token, nothing changed), and a workflow run's
graph in topological columns (a stand-in runner)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.host._service import Service
from tests.host.service._tasks_service import (
    PLUGIN,
    FakeRunner,
    install_into,
    service_at,
    wait_until,
)
from tests.host.test_service_pages import csrf_of, signed_in


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_at(tmp_path_factory.mktemp("tasks-pages")) as service:
        yield service


def _state(service: Service, token: str, task_id: str) -> str:
    with service.client(token) as client:
        state: str = client.get(f"/api/v1/workspaces/pages/tasks/{task_id}").json()["state"]
    return state


def test_the_tasks_page_retries_a_dead_task(
    service: Service, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = install_into(service, "pages", tmp_path_factory.mktemp("plugins"))
    api = "/api/v1/workspaces/pages"
    with service.client(token) as client:
        dead = client.post(f"{api}/tasks", json={"type": "ONCE"}).json()
        wait_until(client, f"{api}/tasks/{dead['id']}", lambda b: b["state"] == "dead")

    with signed_in(service, token) as browser:
        home = browser.get("/workspaces/pages")
        assert 'href="/workspaces/pages/tasks" data-testid="tasks-link"' in home.text
        page = browser.get("/workspaces/pages/tasks")
        assert page.status_code == 200, page.text
        assert f'data-testid="stats-row" data-plugin="{PLUGIN}" data-type="ONCE"' in page.text
        assert re.search(r'data-testid="dead-total">1<', page.text)
        assert f'data-testid="task-row" data-id="{dead["id"]}" data-state="dead"' in page.text
        assert "raised: 1" in page.text
        filtered = browser.get("/workspaces/pages/tasks", params={"state": "succeeded"})
        assert dead["id"] not in filtered.text
        assert browser.get("/workspaces/pages/tasks", params={"state": "lost"}).status_code == 422

        detail = browser.get(f"/workspaces/pages/tasks/{dead['id']}")
        assert detail.status_code == 200, detail.text
        assert 'data-testid="task-state">dead<' in detail.text
        assert "the first run of ONCE fails" in detail.text
        assert 'data-testid="attempt-row" data-outcome="error"' in detail.text
        assert 'data-testid="retry"' in detail.text
        assert 'data-testid="cancel"' not in detail.text
        action = f"/workspaces/pages/tasks/{dead['id']}/retry"

        # refused without the page's CSRF token, or with a forged one: nothing changes
        assert browser.post(action).status_code == 403
        assert browser.post(action, data={"csrf": "forged"}).status_code == 403
        assert _state(service, token, dead["id"]) == "dead"
        assert (
            browser.post(
                f"/workspaces/pages/tasks/{dead['id']}/explode", data={"csrf": csrf_of(detail)}
            ).status_code
            == 404
        )
        missing = browser.post("/workspaces/pages/tasks/nope/retry", data={"csrf": csrf_of(detail)})
        assert missing.status_code == 404

        done = browser.post(action, data={"csrf": csrf_of(detail)})
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/workspaces/pages/tasks/{dead['id']}"
        after = browser.get(done.headers["location"])
        assert 'data-kind="success">Task' in after.text
        with service.client(token) as client:
            ok = wait_until(
                client, f"{api}/tasks/{dead['id']}", lambda b: b["state"] == "succeeded"
            )
        assert ok["result"] == {"runs": 2}

        # retrying a task that succeeded: refused with a message naming its state
        again = browser.post(action, data={"csrf": csrf_of(after)})
        assert again.status_code == 303
        refused = browser.get(again.headers["location"])
        assert 'data-kind="error">Could not retry task' in refused.text
        assert "is succeeded" in refused.text
        assert 'data-testid="progress" max="100" value="100.0"' in refused.text

    with service.client(follow_redirects=False) as anonymous:
        signed_out = anonymous.get("/workspaces/pages/tasks")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/workspaces"
    with service.client(token) as client:
        trail = client.get(f"{api}/audit", params={"subject": PLUGIN}).json()["items"]
    outcomes = [a["outcome"] for a in trail if a["detail"].get("task") == dead["id"]]
    assert outcomes[::-1] == ["submitted", "retried", "refused"]


def test_a_workflow_run_page_draws_its_graph(
    service: Service, tmp_path_factory: pytest.TempPathFactory
) -> None:
    token = install_into(service, "graph", tmp_path_factory.mktemp("plugins"))
    with service.client(token) as client:
        assert client.get("/api/v1/workspaces/graph/tasks").status_code == 200  # opens it
    host = service.service.workspace("graph").host
    host.workflows = FakeRunner()  # type: ignore[attr-defined]
    with service.client(token) as client:
        run = client.post("/api/v1/workspaces/graph/workflows/runs", json={"workflow": "x"}).json()
    with signed_in(service, token) as browser:
        listing = browser.get("/workspaces/graph/tasks")
        assert f'data-testid="run-row" data-id="{run["id"]}" data-state="running"' in listing.text
        page = browser.get(f"/workspaces/graph/workflows/{run['id']}")
        assert page.status_code == 200, page.text
        steps = re.findall(
            r'data-testid="step" data-name="(\w+)" data-state="(\w+)" data-column="(\d+)"',
            page.text,
        )
        columns = {name: (state, int(column)) for name, state, column in steps}
        assert columns == {
            "fetch": ("succeeded", 0),
            "left": ("running", 1),
            "right": ("dead", 1),
            "merge": ("waiting", 2),
        }
        edges = set(re.findall(r'data-testid="edge" data-from="(\w+)" data-to="(\w+)"', page.text))
        assert edges == {
            ("fetch", "left"),
            ("fetch", "right"),
            ("left", "merge"),
            ("right", "merge"),
        }
        assert ">dead</text>" in page.text  # each state as text, not only a colour
        assert browser.get("/workspaces/graph/workflows/nope").status_code == 404
        cancel = f"/workspaces/graph/workflows/{run['id']}/cancel"
        assert browser.post(cancel).status_code == 403
        done = browser.post(cancel, data={"csrf": csrf_of(page)})
        assert done.status_code == 303
        assert 'data-testid="run-state">cancelled<' in browser.get(done.headers["location"]).text
