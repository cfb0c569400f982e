"""The tasks API of the host service against a real workspace: the tasker plugin installed in
its home, its queue run by the service (real sandboxed workers), every action audited with the
token's actor, every bad input a 4xx naming the field with nothing changed; Prometheus text;
workflow routes with a stand-in runner; and a workspace's deletion or a plugin's purge taking
its tasks with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.host._service import Service
from tests.host.service._tasks_service import (
    PLUGIN,
    install_into,
    service_at,
    wait_until,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service_at(tmp_path_factory.mktemp("tasks-service")) as service:
        yield service


@pytest.fixture(scope="module")
def token(service: Service, tmp_path_factory: pytest.TempPathFactory) -> str:
    return install_into(service, "work", tmp_path_factory.mktemp("plugins"))


WS = "/api/v1/workspaces/work"


def _final(body: dict[str, Any]) -> bool:
    return body["state"] in ("succeeded", "dead", "cancelled", "rejected")


def _ids(client: httpx.Client, **params: Any) -> list[str]:
    response = client.get(f"{WS}/tasks", params=params)
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


def test_submit_runs_the_task_and_a_matched_key_answers_the_stored_one(
    service: Service, token: str
) -> None:
    with service.client(token) as client:
        made = client.post(f"{WS}/tasks", json={"type": "ECHO", "payload": {"text": "hi"}})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["created"] is True
        assert body["plugin"] == PLUGIN
        assert body["submitted_by"].startswith("token:")
        done = wait_until(client, f"{WS}/tasks/{body['id']}", _final)
        assert done["state"] == "succeeded", done
        assert done["result"] == {"echo": "hi", "attempt": 1}
        assert done["payload"] == {"text": "hi"}
        assert [a["outcome"] for a in done["attempts_list"]] == ["ok"]

        again = client.post(f"{WS}/tasks", json={"type": "ECHO", "payload": {"text": "hi"}})
        assert again.status_code == 200, again.text
        assert again.json()["created"] is False
        assert again.json()["id"] == body["id"]

        listed = client.get(f"{WS}/tasks", params={"type": "ECHO", "state": "succeeded"})
        [row] = [r for r in listed.json()["items"] if r["id"] == body["id"]]
        assert "payload" not in row  # lists leave payloads out

        trail = client.get(f"{WS}/audit", params={"subject": PLUGIN}).json()["items"]
        submitted = [a for a in trail if a["action"] == "task" and a["outcome"] == "submitted"]
        assert [a["detail"]["task"] for a in submitted] == [body["id"]]  # once: not the replay
        assert submitted[0]["actor"].startswith("token:")


def test_bad_input_is_refused_naming_the_field_and_stores_nothing(
    service: Service, token: str
) -> None:
    with service.client(token) as client:
        before = _ids(client)
        cases: list[tuple[Any, int, str | None]] = [
            ({"type": "NOPE", "payload": {}}, 404, None),
            ({"type": "ECHO", "payload": {"text": 5}}, 400, "payload/text"),
            ({"type": "ECHO", "payload": {}}, 400, "payload/text"),  # required, missing
            ({"payload": {"text": "x"}}, 422, "type"),
            ({"type": "ECHO", "payload": {"text": "x"}, "priority": 500}, 422, "priority"),
            ({"type": "ECHO", "payload": {"text": "x"}, "delay_s": -1}, 422, "delay_s"),
            ({"type": "ECHO", "payload": {"text": "x"}, "colour": "red"}, 422, "colour"),
            ({"type": "ECHO", "payload": {"text": "x"}, "plugin": "acme.other"}, 404, None),
        ]
        for body, status, where in cases:
            refused = client.post(f"{WS}/tasks", json=body)
            assert refused.status_code == status, (body, refused.text)
            error = refused.json()["error"]
            if status == 404:
                assert error["code"] == "not_found"
                assert "NOPE" in error["message"] or "acme.other" in error["message"]
            elif status == 400:
                assert error["details"]["field"] == where, error
                assert error["details"]["task_type"] == "ECHO"
            else:
                assert any(where in p["path"] for p in error["details"]["problems"]), error
        not_json = client.post(
            f"{WS}/tasks", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 400
        assert not_json.json()["error"]["code"] == "invalid_json"
        assert _ids(client) == before  # nothing was stored

        assert client.get(f"{WS}/tasks", params={"state": "lost"}).status_code == 422
        assert client.get(f"{WS}/tasks", params={"limit": 0}).status_code == 422
        for method, path in (
            ("GET", "/tasks/nope"),
            ("POST", "/tasks/nope/cancel"),
            ("POST", "/tasks/nope/retry"),
        ):
            missing = client.request(method, f"{WS}{path}")
            assert missing.status_code == 404, missing.text
            assert missing.json()["error"]["details"]["name"] == "nope"
    with service.client() as anonymous:
        assert anonymous.get(f"{WS}/tasks").status_code == 401
        refused = anonymous.post(f"{WS}/tasks", json={"type": "ECHO", "payload": {"text": "a"}})
        assert refused.status_code == 401
    other = service.workspace("elsewhere")
    with service.client(other) as stranger:
        assert stranger.get(f"{WS}/tasks").status_code == 403
        assert stranger.post(f"{WS}/tasks/x/cancel").status_code == 403
    with service.client(token) as client:
        assert _ids(client) == before


def test_cancel_and_retry_answer_409_with_the_state_when_not_allowed(
    service: Service, token: str
) -> None:
    with service.client(token) as client:
        made = client.post(
            f"{WS}/tasks",
            json={"type": "ECHO", "payload": {"text": "later"}, "delay_s": 3600},
        ).json()
        task = f"{WS}/tasks/{made['id']}"
        refused = client.post(f"{task}/retry")
        assert refused.status_code == 409, refused.text
        assert "is queued" in refused.json()["error"]["message"]
        assert client.get(task).json()["state"] == "queued"  # unchanged

        cancelled = client.post(f"{task}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["error"].startswith("cancelled by token:")
        again = client.post(f"{task}/cancel")
        assert again.status_code == 409
        assert "is cancelled" in again.json()["error"]["message"]

        retried = client.post(f"{task}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["state"] == "queued"
        assert wait_until(client, task, _final)["state"] == "succeeded"  # due at once

        trail = client.get(f"{WS}/audit", params={"subject": PLUGIN}).json()["items"]
        mine = [
            (a["outcome"], a["detail"].get("attempted"))
            for a in trail
            if a["action"] == "task" and a["detail"].get("task") == made["id"]
        ]
        assert mine[::-1] == [
            ("submitted", None),
            ("refused", "retried"),
            ("cancelled", None),
            ("refused", "cancelled"),
            ("retried", None),
        ]
        assert all(a["actor"].startswith("token:") for a in trail if "task" in a["detail"])


def test_a_dead_letter_shows_in_the_stats_and_retries(service: Service, token: str) -> None:
    with service.client(token) as client:
        made = client.post(f"{WS}/tasks", json={"type": "ONCE"}).json()
        dead = wait_until(client, f"{WS}/tasks/{made['id']}", _final)
        assert dead["state"] == "dead", dead
        assert dead["error_kind"] == "raised"
        assert made["id"] in _ids(client, state="dead")

        stats = client.get(f"{WS}/tasks/stats")
        assert stats.status_code == 200, stats.text
        [once] = [s for s in stats.json()["items"] if s["type"] == "ONCE"]
        assert once["plugin"] == PLUGIN
        assert once["dead_letters"] == 1
        assert once["counts"]["dead"] == 1
        assert once["failures"] == {"raised": 1}
        assert once["attempts_last_hour"] == 1
        [echo] = [s for s in stats.json()["items"] if s["type"] == "ECHO"]
        assert echo["succeeded_last_hour"] >= 1
        assert echo["run_p50_s"] is not None
        assert echo["wait_p95_s"] is not None

        metrics = client.get(f"{WS}/metrics").text
        assert f'plugport_tasks{{plugin="{PLUGIN}",state="dead",type="ONCE"}} 1.0' in metrics
        assert f'plugport_tasks_submitted_total{{plugin="{PLUGIN}",type="ONCE"}}' in metrics
        assert "plugport_task_run_seconds_bucket" in metrics
        assert "plugport_task_wait_seconds_count" in metrics

        assert client.post(f"{WS}/tasks/{made['id']}/retry").status_code == 200
        done = wait_until(client, f"{WS}/tasks/{made['id']}", _final)
        assert done["state"] == "succeeded", done
        assert done["result"] == {"runs": 2}
        metrics = client.get(f"{WS}/metrics").text
        assert f'plugport_tasks{{plugin="{PLUGIN}",state="succeeded",type="ONCE"}} 1.0' in metrics
        assert f'plugport_tasks{{plugin="{PLUGIN}",state="dead",type="ONCE"}}' not in metrics


def test_schedules_are_checked_added_listed_and_removed(service: Service, token: str) -> None:
    with service.client(token) as client:
        url = f"{WS}/tasks/schedules"
        base = {"name": "nightly", "type": "ECHO", "payload": {"text": "n"}, "cron": "0 3 * * *"}
        for change, status, field in (
            ({"cron": "0 3 * *"}, 400, "cron"),
            ({"cron": "61 3 * * *"}, 400, "cron"),
            ({"name": "no spaces"}, 400, "name"),
            ({"payload": {"text": 1}}, 400, "payload/text"),
        ):
            refused = client.post(url, json=base | change)
            assert refused.status_code == status, refused.text
            assert refused.json()["error"]["details"]["field"] == field
        assert client.post(url, json=base | {"type": "NOPE"}).status_code == 404
        assert client.get(url).json()["items"] == []  # nothing stored

        added = client.post(url, json=base)
        assert added.status_code == 201, added.text
        assert added.json()["plugin"] == PLUGIN
        taken = client.post(url, json=base)
        assert taken.status_code == 409
        [row] = client.get(url).json()["items"]
        assert row["name"] == "nightly"
        assert row["cron"] == "0 3 * * *"
        assert client.delete(f"{url}/nightly").status_code == 204
        assert client.delete(f"{url}/nightly").status_code == 404
        assert client.get(url).json()["items"] == []
        trail = client.get(f"{WS}/audit", params={"subject": PLUGIN}).json()["items"]
        outcomes = [a["outcome"] for a in trail if a["detail"].get("schedule") == "nightly"]
        assert outcomes[::-1] == [*["refused"] * 3, "schedule_added", "refused", "schedule_removed"]


FLOW = """\
name = "sum-then-say"
[input]
type = "object"
required = ["a", "b"]
[steps.add]
task = "ADD"
payload = { a = "$input/a", b = "$input/b", sleep = "$input/sleep" }
[steps.say]
task = "CONCAT"
needs = ["add"]
payload = { parts = ["sum: ", "$steps/add/result/sum"] }
"""


def test_workflow_routes(service: Service, token: str) -> None:
    runs = f"{WS}/workflows/runs"
    with service.client(token) as client:
        empty = client.post(runs, json={"workflow": " ", "input": {}})
        assert empty.status_code == 400
        assert empty.json()["error"]["details"]["field"] == "workflow"
        cycle = (
            'name = "c"\n[steps.a]\ntask = "ADD"\nneeds = ["b"]\n'
            '[steps.b]\ntask = "ADD"\nneeds = ["a"]\n'
        )
        bad = client.post(runs, json={"workflow": cycle, "input": {}})
        assert bad.status_code == 400
        assert "a -> b -> a" in bad.json()["error"]["message"]
        assert client.post(runs, json={"input": {}}).status_code == 422
        refused = client.post(runs, json={"workflow": FLOW, "input": {"a": 1}})
        assert refused.status_code == 400  # the input's schema: b is missing
        assert client.get(runs).json()["items"] == []

        started = client.post(runs, json={"workflow": FLOW, "input": {"a": 2, "b": 3, "sleep": 0}})
        assert started.status_code == 201, started.text
        run = started.json()
        assert [s["name"] for s in run["steps"]] == ["add", "say"]
        done = wait_until(client, f"{runs}/{run['id']}", lambda r: r["state"] == "succeeded")
        say = next(s for s in done["steps"] if s["name"] == "say")
        assert say["result"] == {"text": "sum: 5"}
        [listed] = client.get(runs).json()["items"]
        assert listed["id"] == run["id"]
        assert client.get(f"{runs}/nope").status_code == 404
        assert client.post(f"{runs}/{run['id']}/cancel").status_code == 409  # it ended

        slow = client.post(runs, json={"workflow": FLOW, "input": {"a": 1, "b": 1, "sleep": 5}})
        assert slow.status_code == 201, slow.text
        cancelled = client.post(f"{runs}/{slow.json()['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
        assert client.post(f"{runs}/{slow.json()['id']}/cancel").status_code == 409


def test_openapi_lists_the_routes_with_tags(service: Service) -> None:
    with service.client() as client:
        spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    ws = "/api/v1/workspaces/{ws}"
    assert paths[f"{ws}/tasks"]["post"]["tags"] == ["host service: tasks"]
    assert "requestBody" in paths[f"{ws}/tasks"]["post"]
    for path in ("/tasks/{task_id}/cancel", "/tasks/{task_id}/retry", "/tasks/stats"):
        assert f"{ws}{path}" in paths
    assert paths[f"{ws}/workflows/runs"]["post"]["tags"] == ["host service: workflows"]


@pytest.mark.parametrize("purge", [False, True])
def test_uninstall_with_purge_removes_its_tasks(
    service: Service, tmp_path: Path, purge: bool
) -> None:
    ws = f"purge-{str(purge).lower()}"
    token = install_into(service, ws, tmp_path)
    url = f"/api/v1/workspaces/{ws}"
    with service.client(token) as client:
        queued = client.post(
            f"{url}/tasks", json={"type": "ECHO", "payload": {"text": "p"}, "delay_s": 3600}
        )
        assert queued.status_code == 201, queued.text
        dead = client.post(f"{url}/tasks", json={"type": "ONCE"}).json()
        wait_until(client, f"{url}/tasks/{dead['id']}", _final)
        sched = {"name": "s", "type": "ECHO", "payload": {"text": "s"}, "cron": "* * * * *"}
        assert client.post(f"{url}/tasks/schedules", json=sched).status_code == 201

        done = client.post(
            f"{url}/installations/{PLUGIN}/uninstall", params={"purge": str(purge).lower()}
        )
        assert done.status_code == 204, done.text
        tasks = client.get(f"{url}/tasks").json()["items"]
        schedules = client.get(f"{url}/tasks/schedules").json()["items"]
        if purge:  # queued tasks, dead letters and schedules go
            assert (tasks, schedules) == ([], [])
            assert client.get(f"{url}/tasks/stats").json()["items"] == []
        else:
            assert len(tasks) == 2
            assert len(schedules) == 1


def test_deleting_a_workspace_removes_its_queue(service: Service, tmp_path: Path) -> None:
    token = install_into(service, "gone", tmp_path)
    home = service.home("gone")
    url = "/api/v1/workspaces/gone"
    with service.client(token) as client:
        made = client.post(
            f"{url}/tasks", json={"type": "ECHO", "payload": {"text": "g"}, "delay_s": 1}
        )
        assert made.status_code == 201
        assert (home / "tasks.sqlite").exists()
    with service.client(service.admin) as admin:
        assert admin.delete(url).status_code == 200
    assert not home.exists()
    again = service.workspace("gone")
    with service.client(again) as client:
        assert client.get(f"{url}/tasks").json()["items"] == []
        assert client.get(f"{url}/tasks/stats").json()["items"] == []
