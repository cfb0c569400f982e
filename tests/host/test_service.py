"""The host service over real HTTP: a real registry, the service on uvicorn, real sandboxed
workers. Every endpoint, consent refused then granted, operations with progress, calls into
one plugin with their resource use, and the abuse cases, each a precise 4xx JSON that changes
nothing."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.host import PluginHost
from plugport.host.service.operations import OPERATION_TASK, Operation
from plugport.host.service.store import ServiceStore
from plugport.host.tasks.store import NewTask, SqlTaskStore
from tests.host._plugins import HomeView, write
from tests.host._service import (
    NETWORK,
    Market,
    Service,
    serving,
    settings_for,
    wait_for,
    write_alpha,
)

V1 = "/api/v1/workspaces"


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    found: dict[str, Any] = body["error"]
    return found


def names(client: httpx.Client, ws: str) -> dict[str, str]:
    listed = client.get(f"{V1}/{ws}/installations")
    assert listed.status_code == 200, listed.text
    return {row["name"]: row["version"] for row in listed.json()["items"]}


def test_the_operator_story(service: Service, market: Market) -> None:
    token = service.workspace("story")
    ws = f"{V1}/story"
    with service.client(token) as client:
        assert client.get(f"{ws}/installations").json() == {"items": []}

        # gamma wants the network: without consent the operation fails and names what it needs
        started = client.post(f"{ws}/installations", json={"plugin": "acme.gamma"})
        assert started.status_code == 202, started.text
        assert started.json()["state"] in ("queued", "running")
        assert started.json()["kind"] == "install"
        refused = wait_for(client, "story", started.json())
        assert refused["state"] == "failed"
        assert refused["error"]["code"] == "consent_required"
        assert refused["error"]["details"]["added"] == ["network 'api.example.com'"]
        assert refused["error"]["details"]["lines"] == ["Connect to: api.example.com"]
        assert refused["error"]["message"] == (
            "acme.gamma 1.0.0 needs consent for: network 'api.example.com'; "
            "send exactly these in 'consent' to grant them"
        )
        assert names(client, "story") == {}
        # consent to something else is no consent
        other = client.post(
            f"{ws}/installations",
            json={"plugin": "acme.gamma", "consent": ["network 'evil.example.net'"]},
        )
        assert wait_for(client, "story", other.json())["error"]["code"] == "consent_required"
        assert names(client, "story") == {}

        granted = client.post(
            f"{ws}/installations",
            json={
                "plugin": "acme.gamma",
                "version": "==1.0.0",
                "consent": ["network 'api.example.com'"],
            },
        )
        done = wait_for(client, "story", granted.json())
        assert done["state"] == "succeeded", done
        assert done["result"]["installed"] == [
            {"name": "acme.gamma", "version": "1.0.0", "previous": None}
        ]
        steps = [p["step"] for p in done["progress"]]
        assert steps[0] == "resolving"
        assert steps[-1] == "done"
        download = next(p for p in done["progress"] if p["step"] == "acme.gamma 1.0.0")
        assert download["done"] == download["total"] > 0

        alpha = wait_for(
            client,
            "story",
            client.post(f"{ws}/installations", json={"plugin": "acme.alpha"}).json(),
        )
        assert alpha["state"] == "succeeded", alpha
        rows = {r["name"]: r for r in client.get(f"{ws}/installations").json()["items"]}
        assert set(rows) == {"acme.alpha", "acme.gamma"}
        assert rows["acme.alpha"]["enabled"] is True
        assert rows["acme.alpha"]["state"] in ("active", "inactive")
        assert rows["acme.alpha"]["update_available"] is False
        assert rows["acme.gamma"]["permissions"]["network"] == ["api.example.com"]

        # execute: a hook on that plugin only, a command, and the plugin's own failure
        greeted = client.post(
            f"{ws}/installations/acme.alpha/execute",
            json={"hook": "greet", "input": {"name": "Ada"}},
        )
        assert greeted.status_code == 200, greeted.text
        body = greeted.json()
        assert body["status"] == "ok"
        assert body["result"] == "acme.alpha 1.0.0 says hello to Ada"
        assert body["error"] is None
        assert body["execution_ms"] > 0
        assert body["resources"]["cpu_seconds"] > 0
        assert body["resources"]["peak_rss_bytes"] > 1024 * 1024
        added = client.post(
            f"{ws}/installations/acme.alpha/execute",
            json={"command": "alpha.add", "args": [2, 3], "input": {"scale": 10}},
        )
        assert added.json()["result"] == 50, added.text
        failed = client.post(f"{ws}/installations/acme.alpha/execute", json={"hook": "fail"})
        assert failed.status_code == 200
        assert failed.json()["status"] == "error"
        assert failed.json()["error"]["code"] == "plugin_error"
        assert "alpha cannot do that" in failed.json()["error"]["message"]
        # the plugin's own frames, its paths relative to its code dir; no host path at all
        trace = failed.json()["error"]["details"]["traceback"]
        assert trace.startswith("Traceback (most recent call last):\n")
        assert 'File "main.py", line 11, in fail' in trace
        assert trace.rstrip().endswith("ValueError: alpha cannot do that")
        assert "/" not in trace
        assert "plugport" not in trace
        unknown = client.post(f"{ws}/installations/acme.alpha/execute", json={"hook": "nope"})
        assert "contributes no hook 'nope'" in error_of(unknown, 400, "invalid_input")["message"]
        unknown = client.post(f"{ws}/installations/acme.alpha/execute", json={"command": "x.y"})
        assert "contributes no command 'x.y'" in error_of(unknown, 400, "invalid_input")["message"]
        both = client.post(
            f"{ws}/installations/acme.alpha/execute", json={"hook": "greet", "command": "x"}
        )
        error_of(both, 400, "invalid_input")

        # disable: the row says so, and calls are refused until it is enabled again
        disabled = client.post(f"{ws}/installations/acme.alpha/disable")
        assert disabled.status_code == 200, disabled.text
        assert (disabled.json()["enabled"], disabled.json()["state"]) == (False, "disabled")
        refused_call = client.post(
            f"{ws}/installations/acme.alpha/execute",
            json={"hook": "greet", "input": {"name": "Ada"}},
        )
        assert "disabled" in error_of(refused_call, 409, "conflict")["message"]
        enabled = client.post(f"{ws}/installations/acme.alpha/enable")
        assert enabled.json()["enabled"] is True

        # a new version: listed as an update, updated through an operation
        market.publish(write_alpha(market.root / "src", "1.1.0"))
        client.post(f"{ws}/installations/acme.alpha/enable")  # a change: forgets the cache
        rows = {r["name"]: r for r in client.get(f"{ws}/installations").json()["items"]}
        assert rows["acme.alpha"]["update_available"] is True
        assert rows["acme.alpha"]["latest_version"] == "1.1.0"
        assert rows["acme.gamma"]["update_available"] is False
        updated = client.post(f"{ws}/installations/acme.alpha/update", json={})
        assert updated.status_code == 202, updated.text
        update = wait_for(client, "story", updated.json())
        assert update["state"] == "succeeded", update
        assert update["kind"] == "update"
        assert update["result"]["installed"] == [
            {"name": "acme.alpha", "version": "1.1.0", "previous": "1.0.0"}
        ]
        assert names(client, "story")["acme.alpha"] == "1.1.0"
        greeted = client.post(
            f"{ws}/installations/acme.alpha/execute",
            json={"hook": "greet", "input": {"name": "Bo"}},
        )
        assert greeted.json()["result"] == "acme.alpha 1.1.0 says hello to Bo"

        # the audit trail names the token that did each change
        prefix = token.split("_")[1]
        trail = client.get(f"{ws}/audit", params={"limit": 200}).json()["items"]
        seen = {(a["action"], a["subject"], a["outcome"], a["actor"]) for a in trail}
        assert ("consent", "acme.gamma", "refused", f"token:{prefix}") in seen
        assert ("disable", "acme.alpha", "ok", f"token:{prefix}") in seen
        assert ("update", "acme.alpha", "ok", f"token:{prefix}") in seen
        only = client.get(f"{ws}/audit", params={"subject": "acme.gamma", "limit": 2}).json()
        assert len(only["items"]) == 2
        assert {a["subject"] for a in only["items"]} == {"acme.gamma"}
        assert set(only["items"][0]) == {
            "at",
            "actor",
            "action",
            "subject",
            "outcome",
            "detail",
            "id",
        }

        metrics = client.get(f"{ws}/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert 'plugport_plugin_calls_total{kind="hook",outcome="ok",plugin="acme.alpha"}' in (
            metrics.text
        )
        rows = {r["name"]: r for r in client.get(f"{ws}/installations").json()["items"]}
        assert rows["acme.alpha"]["calls"] >= 1

        listed = client.get(f"{ws}/operations").json()["items"]
        assert [o["id"] for o in listed][:2] == [update["id"], alpha["id"]]  # newest first
        assert {o["state"] for o in listed} == {"succeeded", "failed"}

        # an update that asks for more: consent to exactly what is new, given on the update
        grows = NETWORK.replace('"api.example.com"', '"api.example.com", "cdn.example.net"')
        market.publish(write(market.root / "src", "acme.gamma", "1.1.0", extra=grows))
        asked = wait_for(
            client, "story", client.post(f"{ws}/installations/acme.gamma/update").json()
        )
        assert asked["error"]["code"] == "consent_required", asked
        assert asked["error"]["details"]["added"] == ["network 'cdn.example.net'"]
        assert names(client, "story")["acme.gamma"] == "1.0.0"
        consented = client.post(
            f"{ws}/installations/acme.gamma/update", json={"consent": ["network 'cdn.example.net'"]}
        )
        assert wait_for(client, "story", consented.json())["state"] == "succeeded"
        assert names(client, "story")["acme.gamma"] == "1.1.0"

        # uninstall: 204, gone from the list and from disk
        gone = client.post(f"{ws}/installations/acme.gamma/uninstall", params={"purge": "true"})
        assert gone.status_code == 204, gone.text
        assert names(client, "story") == {"acme.alpha": "1.1.0"}
        assert not (service.home("story") / "plugins" / "acme.gamma").exists()
        error_of(client.get(f"{ws}/installations/acme.gamma"), 404, "not_found")
        assert client.get(f"{ws}/installations/acme.alpha").json()["version"] == "1.1.0"


def test_admin_workspaces_and_tokens(service: Service) -> None:
    with service.client(service.admin) as admin:
        created = admin.post(V1, json={"name": "team-a"})
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["name"] == "team-a"
        assert body["token"].startswith(f"pph_{body['token_prefix']}_")
        assert "team-a" in {w["name"] for w in admin.get(V1).json()["items"]}
        again = admin.post(V1, json={"name": "team-a"})
        assert "exists already" in error_of(again, 409, "conflict")["message"]
        for bad in ("../x", "Team", "a_b", "-a", "a" * 41, "", ".", "a/b"):
            refused = error_of(admin.post(V1, json={"name": bad}), 400, "invalid_input")
            assert refused["message"].startswith("workspace: "), bad
            assert refused["details"] == {"field": "workspace"}, bad
        error_of(admin.post(V1, json={"name": 5}), 422, "invalid_request")
        error_of(admin.post(V1, json={"name": "ok", "owner": "x"}), 422, "invalid_request")

        made = admin.post("/api/v1/tokens", json={"workspace": "team-a", "expires_days": 7})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert made.json()["expires_at"] > time.time() + 6 * 86400
        assert "token_hash" not in made.json()
        error_of(admin.post("/api/v1/tokens", json={"workspace": "nope"}), 404, "not_found")
        error_of(admin.post("/api/v1/tokens", json={"workspace": "../x"}), 400, "invalid_input")
        listed = admin.get("/api/v1/tokens", params={"workspace": "team-a"}).json()["items"]
        assert {t["prefix"] for t in listed} == {body["token_prefix"], made.json()["prefix"]}
        assert all("token" not in t and "token_hash" not in t for t in listed)

        with service.client(token) as member:
            assert member.get(f"{V1}/team-a/installations").status_code == 200
            used = admin.get("/api/v1/tokens", params={"workspace": "team-a"}).json()["items"]
            assert any(t["last_used_at"] for t in used if t["prefix"] == made.json()["prefix"])
            # a workspace token is not an admin token
            error_of(member.post(V1, json={"name": "mine"}), 403, "forbidden")
            error_of(member.get(V1), 403, "forbidden")
            error_of(member.post("/api/v1/tokens", json={"workspace": "team-a"}), 403, "forbidden")
            assert "mine" not in {w["name"] for w in admin.get(V1).json()["items"]}

            revoked = admin.post(f"/api/v1/tokens/{made.json()['prefix']}/revoke")
            assert revoked.status_code == 200
            assert revoked.json()["revoked_at"] is not None
            message = error_of(member.get(f"{V1}/team-a/installations"), 401, "unauthenticated")
            assert "was revoked" in message["message"]
        error_of(admin.post("/api/v1/tokens/zzzzzzzz/revoke"), 404, "not_found")
        spec = admin.get("/openapi.json").json()
        install = spec["paths"]["/api/v1/workspaces/{ws}/installations"]["post"]
        body = install["requestBody"]["content"]["application/json"]["schema"]
        assert set(body["properties"]) == {"plugin", "version", "consent"}
        assert body["additionalProperties"] is False


def test_abuse_is_refused_precisely_and_changes_nothing(
    service: Service, market: Market, tmp_path: Path
) -> None:
    mine, theirs = service.workspace("mine"), service.workspace("theirs")
    with service.client(mine) as client:
        installed = client.post(f"{V1}/mine/installations", json={"plugin": "acme.alpha"})
        assert wait_for(client, "mine", installed.json())["state"] == "succeeded"
    home = service.home("mine")
    before = HomeView.of(home, market.registry.url)
    operations_before = set(service.service.workspace("mine").operations)

    # an expired token, made with a clock ten days back
    past = ServiceStore(service.settings.data_dir / "service.sqlite", clock=lambda: 0.0)
    expired, _ = past.create_token("workspace", "mine", expires_days=1)
    past.close()

    big = {"hook": "greet", "input": {"name": "x" * (1024 * 1024)}}
    target = f"{V1}/mine/installations/acme.alpha"
    cases: list[tuple[str | None, str, str, dict[str, Any], int, str]] = [
        # (token, method, path, request options, status, code)
        (None, "GET", f"{V1}/mine/installations", {}, 401, "unauthenticated"),
        ("garbage", "GET", f"{V1}/mine/installations", {}, 401, "unauthenticated"),
        ("pph_00000000_" + "a" * 43, "GET", f"{V1}/mine/installations", {}, 401, "unauthenticated"),
        (expired, "GET", f"{V1}/mine/installations", {}, 401, "unauthenticated"),
        (theirs, "GET", f"{V1}/mine/installations", {}, 403, "forbidden"),
        (theirs, "POST", f"{target}/disable", {}, 403, "forbidden"),
        (theirs, "POST", f"{target}/uninstall", {}, 403, "forbidden"),
        (
            theirs,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "acme.gamma"}},
            403,
            "forbidden",
        ),
        (theirs, "POST", f"{target}/execute", {"json": {"hook": "greet"}}, 403, "forbidden"),
        (theirs, "GET", f"{V1}/mine/audit", {}, 403, "forbidden"),
        (theirs, "GET", f"{V1}/mine/metrics", {}, 403, "forbidden"),
        (theirs, "GET", f"{V1}/nowhere/installations", {}, 403, "forbidden"),  # no existence leak
        (service.admin, "GET", f"{V1}/nowhere/installations", {}, 404, "not_found"),
        (mine, "GET", f"{V1}/Mine/installations", {}, 400, "invalid_input"),
        (mine, "GET", f"{V1}/..%2Fx/installations", {}, 404, "not_found"),
        (mine, "GET", f"{V1}/mine/operations/nope", {}, 404, "not_found"),
        (mine, "POST", f"{V1}/mine/installations", {"content": b"{not json"}, 400, "invalid_json"),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "acme.gamma", "x": 1}},
            422,
            "invalid_request",
        ),
        (mine, "POST", f"{V1}/mine/installations", {"json": {"plugin": 7}}, 422, "invalid_request"),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "acme.gamma", "consent": "all"}},
            422,
            "invalid_request",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": ["acme.gamma"]},
            422,
            "invalid_request",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "Not A Plugin"}},
            400,
            "invalid_input",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "acme.gamma", "version": "latest"}},
            400,
            "invalid_input",
        ),
        # the API installs registry names only: URLs and paths are refused before anything runs
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": f"{market.registry.url}/x.plugport"}},
            400,
            "invalid_input",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "https://example.com/acme.evil-1.0.0.plugport"}},
            400,
            "invalid_input",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": str(tmp_path)}},
            400,
            "invalid_input",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "./acme.alpha"}},
            400,
            "invalid_input",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "acme.gamma", "version": "==1.0.0; rm -rf /"}},
            400,
            "invalid_input",
        ),
        (
            mine,
            "POST",
            f"{V1}/mine/installations",
            {"json": {"plugin": "acme.gamma", "consent": ["x" * 70000]}},
            413,
            "too_large",
        ),
        (mine, "POST", f"{target}/execute", {"json": big}, 413, "too_large"),
        (
            mine,
            "POST",
            f"{target}/execute",
            {"json": {"hook": "greet", "input": [1]}},
            422,
            "invalid_request",
        ),
        (
            mine,
            "POST",
            f"{target}/execute",
            {"json": {"hook": "greet", "args": [1]}},
            400,
            "invalid_input",
        ),
        (mine, "POST", f"{target}/execute", {"json": {}}, 400, "invalid_input"),
        (
            mine,
            "POST",
            f"{V1}/mine/installations/acme.nope/execute",
            {"json": {"hook": "greet"}},
            404,
            "not_found",
        ),
        (mine, "POST", f"{V1}/mine/installations/acme.nope/enable", {}, 404, "not_found"),
        (mine, "POST", f"{V1}/mine/installations/acme.nope/disable", {}, 404, "not_found"),
        (mine, "POST", f"{V1}/mine/installations/acme.nope/uninstall", {}, 404, "not_found"),
        (mine, "POST", f"{V1}/mine/installations/acme.nope/update", {"json": {}}, 404, "not_found"),
        (
            mine,
            "POST",
            f"{V1}/mine/installations/acme.alpha/update",
            {"json": {"x": 1}},
            422,
            "invalid_request",
        ),
        (mine, "GET", f"{V1}/mine/audit", {"params": {"limit": 0}}, 422, "invalid_request"),
        (mine, "GET", f"{V1}/mine/audit", {"params": {"limit": "many"}}, 422, "invalid_request"),
        (mine, "DELETE", f"{V1}/mine/installations", {}, 405, "method_not_allowed"),
        (mine, "GET", "/api/v1/nothing-here", {}, 404, "not_found"),
    ]
    for token, method, path, options, status, code in cases:
        with service.client(token) as client:
            response = client.request(method, path, **options)
        error_of(response, status, code)
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
    with service.client(mine) as client:
        message = error_of(
            client.post(f"{V1}/mine/installations", json={"plugin": "acme..x"}),
            400,
            "invalid_input",
        )["message"]
        assert message.startswith("plugin: ")
        assert "registry plugins by name only" in message
        url = {"plugin": "https://example.com/acme.evil-1.0.0.plugport"}
        refused = error_of(client.post(f"{V1}/mine/installations", json=url), 400, "invalid_input")
        assert refused["details"] == {"field": "plugin"}
        big_message = error_of(client.post(f"{target}/execute", json=big), 413, "too_large")
        assert str(service.settings.max_input_bytes) in big_message["message"]
        assert names(client, "mine") == before.versions()
    assert HomeView.of(home, market.registry.url) == before  # nothing changed, nothing audited
    assert set(service.service.workspace("mine").operations) == operations_before
    assert not (service.settings.data_dir / "workspaces" / "nowhere").exists()


def test_deleting_a_workspace_stops_its_plugins_revokes_its_tokens_and_removes_its_home(
    service: Service,
) -> None:
    token = service.workspace("gone")
    with service.client(token) as member, service.client(service.admin) as admin:
        started = member.post(f"{V1}/gone/installations", json={"plugin": "acme.alpha"})
        assert wait_for(member, "gone", started.json())["state"] == "succeeded"
        ran = member.post(
            f"{V1}/gone/installations/acme.alpha/execute",
            json={"hook": "greet", "input": {"name": "Ada"}},
        )
        assert ran.json()["status"] == "ok", ran.text
        [status] = service.service.workspace("gone").host.supervisor.status("acme.alpha")
        assert status.pid is not None
        home = service.home("gone")
        assert (home / "host.sqlite").is_file()

        # a workspace's own token may not delete it, nor an unknown or a bad name be deleted
        error_of(member.delete(f"{V1}/gone"), 403, "forbidden")
        error_of(admin.delete(f"{V1}/nowhere"), 404, "not_found")
        error_of(admin.delete(f"{V1}/Not_A_Name"), 400, "invalid_input")
        # nor while an operation is queued or running there
        waiting = Operation("update", "gone", "acme.alpha", "tests")
        operations = service.service.workspace("gone").operations
        operations[waiting.id] = waiting
        busy = error_of(admin.delete(f"{V1}/gone"), 409, "conflict")
        assert waiting.id in busy["message"]
        del operations[waiting.id]
        assert home.is_dir()
        assert member.get(f"{V1}/gone/installations").status_code == 200

        deleted = admin.delete(f"{V1}/gone")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"deleted": "gone", "tokens_revoked": 1}
        assert not home.exists()
        assert not any((service.settings.data_dir / "deleted").iterdir())
        with pytest.raises(ProcessLookupError):
            os.kill(status.pid, 0)  # its worker is gone with it
        assert (
            "was revoked"
            in error_of(member.get(f"{V1}/gone/installations"), 401, "unauthenticated")["message"]
        )
        error_of(admin.get(f"{V1}/gone/installations"), 404, "not_found")
        assert "gone" not in {w["name"] for w in admin.get(V1).json()["items"]}

        # the name may be used again, for a workspace that starts empty
        again = admin.post(V1, json={"name": "gone"})
        assert again.status_code == 201
        with service.client(again.json()["token"]) as fresh:
            assert names(fresh, "gone") == {}


def test_operations_in_one_workspace_queue_and_all_finish(service: Service) -> None:
    token = service.workspace("queue")
    with service.client(token) as client:
        first = client.post(f"{V1}/queue/installations", json={"plugin": "acme.alpha"}).json()
        second = client.post(
            f"{V1}/queue/installations",
            json={
                "plugin": "acme.gamma",
                "version": "==1.0.0",
                "consent": ["network 'api.example.com'"],
            },
        ).json()
        assert second["state"] == "queued"
        assert wait_for(client, "queue", first)["state"] == "succeeded"
        done = wait_for(client, "queue", second)
        assert done["state"] == "succeeded", done
        # one at a time: the second started only once the first had finished
        assert done["started_at"] >= wait_for(client, "queue", first)["finished_at"]
        assert set(names(client, "queue")) == {"acme.alpha", "acme.gamma"}


def test_shutting_down_mid_install_leaves_all_or_nothing(market: Market, tmp_path: Path) -> None:
    with serving(settings_for(tmp_path, market)) as short_lived:
        token = short_lived.workspace("brief")
        with short_lived.client(token) as client:
            started = client.post(
                f"{V1}/brief/installations",
                json={
                    "plugin": "acme.gamma",
                    "version": "==1.0.0",
                    "consent": ["network 'api.example.com'"],
                },
            )
            assert started.status_code == 202
        operation = short_lived.service.workspace("brief").operations[started.json()["id"]]
    # the server stopped: the operation finished, or was cut off and waits on the queue to run
    # again (installs are all or nothing, so the home shows none of it either way)
    assert operation.state in ("succeeded", "queued"), operation.public()
    home = tmp_path / "service" / "workspaces" / "brief"
    view = HomeView.of(home, market.registry.url)
    assert view.journals == ()
    # a download cut off mid-way may leave its staging directory; the next start sweeps it
    host = PluginHost(app="myapp", app_version="2.4.0", home=home)
    host.open()
    asyncio.run(host.stop())
    view = HomeView.of(home, market.registry.url)
    assert (view.journals, view.staging) == ((), frozenset())
    assert {d.split("/")[0] for d in view.code_dirs} == set(view.versions())
    gc.collect()  # a socket a cancelled worker start left open would be reported here


def test_operations_outlive_a_restart_and_cut_off_ones_run_again(
    market: Market, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, market)
    with serving(settings) as first:
        token = first.workspace("lasting")
        with first.client(token) as client:
            started = client.post(f"{V1}/lasting/installations", json={"plugin": "acme.alpha"})
            done = wait_for(client, "lasting", started.json())
    assert done["state"] == "succeeded"
    # as if the service had died with an update under way: its task left running
    store = SqlTaskStore(settings.data_dir / "workspaces" / "lasting" / "tasks.sqlite")
    payload = {
        "kind": "update", "workspace": "lasting", "target": "acme.alpha", "actor": "tests",
        "consent": [],
    }  # fmt: skip
    cut = NewTask("", OPERATION_TASK, payload, 3, id="0123456789abcdef0123456789abcdef")
    store.insert(cut, time.time())
    assert store.claim(cut.id, "a-node-that-died", time.time(), 600) is not None
    store.close()

    with serving(settings) as second, second.client(token) as client:
        again = client.get(f"{V1}/lasting/operations/{done['id']}")
        assert again.status_code == 200, again.text
        assert again.json() == done  # the same record, progress and result included
        # the service starts the workspace whose queue has work: the update runs again
        ended = wait_for(client, "lasting", {"id": cut.id})
        assert ended["state"] == "succeeded", ended
        assert ended["result"]["installed"] == []  # nothing newer: the same version stays
        assert [u["name"] for u in ended["result"]["unchanged"]] == ["acme.alpha"]
        listed = client.get(f"{V1}/lasting/operations").json()["items"]
        assert [o["id"] for o in listed] == [cut.id, done["id"]]  # newest first
        error_of(client.get(f"{V1}/lasting/operations/0123456789abcdef"), 404, "not_found")
        assert set(names(client, "lasting")) == {"acme.alpha"}
