"""Updates in the host service over real HTTP: a real registry, the service on uvicorn, real
sandboxed workers. The updates listing with its permission diff; auto-update policies set,
refused precisely, kept durably and removed by a purge and a workspace's deletion; a check that
applies a patch within its policy (as the ``auto-update`` actor, audited with the policy), holds
an update that adds a permission, and rolls back one that fails its health check without trying
it again; the schedule that runs checks by itself, across a restart; the pages' forms."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.host.install import HostPaths
from plugport.host.service.auto_update import AUTO_UPDATE_TASK
from plugport.host.service.operations import OPERATION_TASK
from plugport.host.state import HostState
from plugport.host.tasks.store import NewTask, SqlTaskStore
from tests.host._plugins import BROKEN, write
from tests.host._service import NETWORK, Market, Service, serving, settings_for, wait_for
from tests.host.test_service import error_of

V1 = "/api/v1/workspaces"
GROWS = """\
[credentials.jira]
kind = "bearer"
hosts = ["api.example.com"]

[permissions]
network = ["api.example.com", "cdn.example.net"]
secrets = { reveal = ["jira"] }
"""
"""An update of a NETWORK plugin that asks for a second host, a credential and a raw read."""


def publish(market: Market, name: str, version: str, **options: Any) -> None:
    market.publish(write(market.root / "src", name, version, **options))


def install(client: httpx.Client, ws: str, plugin: str, consent: list[str] | None = None) -> None:
    body = {"plugin": plugin, "consent": consent or []}
    started = client.post(f"{V1}/{ws}/installations", json=body)
    assert started.status_code == 202, started.text
    assert wait_for(client, ws, started.json())["state"] == "succeeded"


def version_of(client: httpx.Client, ws: str, name: str) -> str:
    row = client.get(f"{V1}/{ws}/installations/{name}")
    assert row.status_code == 200, row.text
    version: str = row.json()["version"]
    return version


def trail(client: httpx.Client, ws: str, name: str) -> list[dict[str, Any]]:
    found = client.get(f"{V1}/{ws}/audit", params={"subject": name, "limit": 200})
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


def audited(client: httpx.Client, ws: str, name: str) -> list[tuple[str, str, str]]:
    return [(a["action"], a["outcome"], a["actor"]) for a in trail(client, ws, name)]


def item_of(client: httpx.Client, ws: str, name: str) -> dict[str, Any] | None:
    listed = client.get(f"{V1}/{ws}/updates")
    assert listed.status_code == 200, listed.text
    found = [i for i in listed.json()["items"] if i["name"] == name]
    return found[0] if found else None


def set_policy(client: httpx.Client, ws: str, name: str, policy: str) -> dict[str, Any]:
    done = client.put(f"{V1}/{ws}/installations/{name}/auto-update", json={"policy": policy})
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


def check(client: httpx.Client, ws: str, name: str) -> dict[str, Any]:
    done = client.post(f"{V1}/{ws}/updates/check")
    assert done.status_code == 200, done.text
    [result] = [r for r in done.json()["results"] if r["name"] == name]
    found: dict[str, Any] = result
    return found


def operation(client: httpx.Client, ws: str, operation_id: str) -> dict[str, Any]:
    return wait_for(client, ws, {"id": operation_id})


def test_a_patch_policy_applies_the_newest_patch_as_auto_update(
    service: Service, market: Market
) -> None:
    publish(market, "acme.patchy", "1.0.0")
    token = service.workspace("patching")
    with service.client(token) as client:
        install(client, "patching", "acme.patchy")
        listed = client.get(f"{V1}/patching/updates").json()
        assert listed["items"] == []  # nothing newer yet
        assert {p["name"]: p["policy"] for p in listed["policies"]} == {"acme.patchy": "none"}

        for version in ("1.0.1", "1.1.0", "1.0.2rc1"):
            publish(market, "acme.patchy", version)
        client.post(f"{V1}/patching/installations/acme.patchy/enable")  # forgets the cache
        item = item_of(client, "patching", "acme.patchy")
        assert item is not None
        assert (item["current"], item["latest"], item["kind"]) == ("1.0.0", "1.1.0", "minor")
        assert item["permissions"]["added"] == item["permissions"]["removed"] == []
        assert item["permissions"]["lines"] == [
            {"line": "No permissions: it can only compute on what it is given", "dangerous": False}
        ]
        assert (item["consent"], item["needs_consent"]) == ([], False)
        assert item["changelog"] is None  # the registry gives none
        assert item["auto_update"]["policy"] == "none"
        assert item["auto_update"]["state"] == "off"

        chosen = set_policy(client, "patching", "acme.patchy", "patch")
        assert (chosen["name"], chosen["policy"], chosen["failed"]) == ("acme.patchy", "patch", {})
        assert chosen["updated_by"] == f"token:{token.split('_')[1]}"
        got = client.get(f"{V1}/patching/installations/acme.patchy/auto-update").json()
        assert got["policy"] == "patch"
        assert client.get(f"{V1}/patching/installations/acme.patchy").json()["auto_update"] == (
            "patch"
        )
        assert ("auto-update-policy", "ok", chosen["updated_by"]) in audited(
            client, "patching", "acme.patchy"
        )
        item = item_of(client, "patching", "acme.patchy")
        assert item is not None
        assert (item["auto_update"]["state"], item["auto_update"]["version"]) == ("apply", "1.0.1")

        result = check(client, "patching", "acme.patchy")
        assert (result["state"], result["version"], result["policy"]) == ("apply", "1.0.1", "patch")
        done = operation(client, "patching", result["operation"])
        assert done["state"] == "succeeded", done
        assert (done["kind"], done["actor"]) == ("update", "auto-update")
        assert done["result"]["installed"] == [
            {"name": "acme.patchy", "version": "1.0.1", "previous": "1.0.0"}
        ]
        assert version_of(client, "patching", "acme.patchy") == "1.0.1"  # not 1.1.0, not rc1
        greeted = client.post(
            f"{V1}/patching/installations/acme.patchy/execute",
            json={"hook": "greet", "input": {"name": "Ada"}},
        )
        assert greeted.json()["result"] == "acme.patchy 1.0.1 says hello to Ada"

        rows = trail(client, "patching", "acme.patchy")
        [auto] = [a for a in rows if a["action"] == "auto-update"]
        assert (auto["outcome"], auto["actor"]) == ("ok", "auto-update")
        assert auto["detail"] | {"operation": None} == {
            "policy": "patch",
            "version": "1.0.1",
            "previous": "1.0.0",
            "operation": None,
        }
        assert ("update", "ok", "auto-update") in audited(client, "patching", "acme.patchy")

        # again: 1.1.0 is a minor update, which the patch policy leaves to the operator
        again = check(client, "patching", "acme.patchy")
        assert (again["state"], again["operation"]) == ("current", None)
        assert "1.1.0 is a minor update" in again["reason"]
        # the next check is scheduled on the workspace's queue
        listed = client.get(f"{V1}/patching/updates").json()
        interval = service.settings.auto_update_interval_s
        assert listed["next_check"] > time.time() + interval - 120
        queued = client.get(
            f"{V1}/patching/tasks", params={"type": AUTO_UPDATE_TASK, "state": "queued"}
        ).json()["items"]
        assert len(queued) == 1


def test_an_update_that_adds_a_permission_is_held_for_consent(
    service: Service, market: Market
) -> None:
    publish(market, "acme.grower", "1.0.0", extra=NETWORK)
    token = service.workspace("growing")
    with service.client(token) as client:
        install(client, "growing", "acme.grower", ["network 'api.example.com'"])
        set_policy(client, "growing", "acme.grower", "minor")
        publish(market, "acme.grower", "1.1.0", extra=GROWS)
        added = [
            "network 'cdn.example.net'",
            "credential 'jira' sent to 'api.example.com'",
            "secrets.reveal 'jira'",
        ]
        for _ in range(2):  # held both times, audited once
            result = check(client, "growing", "acme.grower")
            assert (result["state"], result["version"]) == ("consent", "1.1.0")
            assert result["reason"] == "waiting for your consent: 1.1.0 adds " + "; ".join(added)
            assert result["operation"] is None
        assert version_of(client, "growing", "acme.grower") == "1.0.0"
        operations = client.get(f"{V1}/growing/operations").json()["items"]
        assert [o["actor"] for o in operations if o["kind"] == "update"] == []
        assert (
            audited(client, "growing", "acme.grower").count(("auto-update", "held", "auto-update"))
            == 1
        )

        item = item_of(client, "growing", "acme.grower")
        assert item is not None
        assert item["permissions"]["added"] == [
            {"line": line, "dangerous": line.startswith("secrets.reveal")} for line in added
        ]
        assert [p["dangerous"] for p in item["permissions"]["lines"]] == [False, False, True]
        assert (item["consent"], item["needs_consent"]) == (added, True)
        assert item["auto_update"]["state"] == "consent"

        # the operator consents on the update: that is what moves it
        consented = client.post(
            f"{V1}/growing/installations/acme.grower/update", json={"consent": added}
        )
        assert wait_for(client, "growing", consented.json())["state"] == "succeeded"
        assert version_of(client, "growing", "acme.grower") == "1.1.0"
        assert item_of(client, "growing", "acme.grower") is None


def test_a_failed_health_check_rolls_back_and_is_not_tried_again(
    service: Service, market: Market
) -> None:
    publish(market, "acme.fragile", "1.0.0")
    token = service.workspace("fragile")
    with service.client(token) as client:
        install(client, "fragile", "acme.fragile")
        set_policy(client, "fragile", "acme.fragile", "patch")
        publish(market, "acme.fragile", "1.0.1", code=BROKEN)  # initialize() raises

        result = check(client, "fragile", "acme.fragile")
        assert (result["state"], result["version"]) == ("apply", "1.0.1")
        failed = operation(client, "fragile", result["operation"])
        assert failed["state"] == "failed", failed
        assert version_of(client, "fragile", "acme.fragile") == "1.0.0"
        greeted = client.post(
            f"{V1}/fragile/installations/acme.fragile/execute",
            json={"hook": "greet", "input": {"name": "Ada"}},
        )
        assert greeted.json()["result"] == "acme.fragile 1.0.0 says hello to Ada"

        rows = trail(client, "fragile", "acme.fragile")
        [auto] = [a for a in rows if a["action"] == "auto-update"]
        assert (auto["outcome"], auto["actor"]) == ("failed", "auto-update")
        assert (auto["detail"]["policy"], auto["detail"]["version"]) == ("patch", "1.0.1")
        reason = auto["detail"]["reason"]
        assert reason.startswith("auto-update to 1.0.1 failed, rolled back: ")
        assert "rolled back (acme.fragile 1.0.1 -> back to 1.0.0)" in reason
        assert "raised RuntimeError: this version cannot start" in reason
        assert ("update", "rolled-back", "auto-update") in audited(
            client, "fragile", "acme.fragile"
        )

        item = item_of(client, "fragile", "acme.fragile")
        assert item is not None
        assert item["auto_update"]["state"] == "failed"
        assert item["auto_update"]["reason"].startswith("auto-update to 1.0.1 failed, rolled back:")
        assert list(item["auto_update"]["failed"]) == ["1.0.1"]

        # not retried: the next check holds it, and no operation is queued
        before = len(client.get(f"{V1}/fragile/operations").json()["items"])
        again = check(client, "fragile", "acme.fragile")
        assert (again["state"], again["version"], again["operation"]) == ("failed", "1.0.1", None)
        assert len(client.get(f"{V1}/fragile/operations").json()["items"]) == before
        assert version_of(client, "fragile", "acme.fragile") == "1.0.0"

        # a newer version is tried
        publish(market, "acme.fragile", "1.0.2")
        newer = check(client, "fragile", "acme.fragile")
        assert (newer["state"], newer["version"]) == ("apply", "1.0.2")
        assert operation(client, "fragile", newer["operation"])["state"] == "succeeded"
        assert version_of(client, "fragile", "acme.fragile") == "1.0.2"


def test_policies_are_refused_precisely_and_change_nothing(
    service: Service, market: Market
) -> None:
    token, other = service.workspace("strict"), service.workspace("stranger")
    url = f"{V1}/strict/installations/acme.alpha/auto-update"
    with service.client(token) as client:
        install(client, "strict", "acme.alpha")
        before = service.service.store.auto_updates("strict")
        for body, path in [
            ({"policy": "major"}, "policy"),
            ({"policy": "PATCH"}, "policy"),
            ({"policy": 1}, "policy"),
            ({"policy": None}, "policy"),
            ({}, "policy"),
            ({"policy": "patch", "also": 1}, "also"),
        ]:
            error = error_of(client.put(url, json=body), 422, "invalid_request")
            assert path in [p["path"] for p in error["details"]["problems"]], error
        error_of(client.put(url, content=b"patch"), 400, "invalid_json")
        error_of(client.put(url, content=b"{" + b" " * 70_000 + b"}"), 413, "too_large")
        missing = client.put(
            f"{V1}/strict/installations/acme.nope/auto-update", json={"policy": "patch"}
        )
        error_of(missing, 404, "not_found")
        error_of(client.get(f"{V1}/strict/installations/acme.nope/auto-update"), 404, "not_found")
        error_of(client.put(f"{V1}/stranger/installations/acme.alpha/auto-update",
                            json={"policy": "patch"}), 403, "forbidden")  # fmt: skip
        error_of(client.post(f"{V1}/stranger/updates/check"), 403, "forbidden")
        error_of(client.get(f"{V1}/stranger/updates"), 403, "forbidden")
    with service.client() as nobody:
        error_of(nobody.put(url, json={"policy": "patch"}), 401, "unauthenticated")
        error_of(nobody.get(f"{V1}/strict/updates"), 401, "unauthenticated")
    with service.client(other) as theirs:
        error_of(theirs.put(url, json={"policy": "patch"}), 403, "forbidden")
    assert service.service.store.auto_updates("strict") == before == {}
    with service.client(token) as client:
        assert not [a for a in trail(client, "strict", "acme.alpha") if "auto" in a["action"]]
        spec = client.get("/openapi.json").json()
    route = spec["paths"]["/api/v1/workspaces/{ws}/installations/{name}/auto-update"]["put"]
    assert route["tags"] == ["host service: updates"]
    body = route["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["policy"]["enum"] == ["none", "patch", "minor"]
    assert body["additionalProperties"] is False
    assert "/api/v1/workspaces/{ws}/updates/check" in spec["paths"]


def test_a_purge_and_a_workspace_deletion_remove_the_policy(
    service: Service, market: Market
) -> None:
    token = service.workspace("purging")
    store = service.service.store
    with service.client(token) as client:
        install(client, "purging", "acme.alpha")
        set_policy(client, "purging", "acme.alpha", "minor")
        store.auto_update_failed("purging", "acme.alpha", "9.9.9", "remembered")
        gone = client.post(f"{V1}/purging/installations/acme.alpha/uninstall")
        assert gone.status_code == 204
        assert store.auto_updates("purging")["acme.alpha"].policy == "minor"  # kept: no purge
        install(client, "purging", "acme.alpha")
        assert client.get(f"{V1}/purging/installations/acme.alpha/auto-update").json() == {
            "name": "acme.alpha",
            "words": "minor and patch updates (1.x) on their own",
            "policy": "minor",
            "updated_at": pytest.approx(time.time(), abs=120),
            "updated_by": f"token:{token.split('_')[1]}",
            "failed": {"9.9.9": "remembered"},
        }
        purged = client.post(
            f"{V1}/purging/installations/acme.alpha/uninstall", params={"purge": "true"}
        )
        assert purged.status_code == 204
        assert store.auto_updates("purging") == {}
        after = client.get(f"{V1}/purging/installations/acme.alpha/auto-update")
        error_of(after, 404, "not_found")
        install(client, "purging", "acme.gamma", ["network 'api.example.com'"])
        set_policy(client, "purging", "acme.gamma", "patch")
        assert set(store.auto_updates("purging")) == {"acme.gamma"}
        assert check(client, "purging", "acme.gamma")["state"] == "current"
    with service.client(service.admin) as admin:
        assert admin.delete(f"{V1}/purging").status_code == 200
        again = admin.post(f"{V1}", json={"name": "purging"})
        assert again.status_code == 201
        token = again.json()["token"]
    assert store.auto_updates("purging") == {}
    with sqlite3.connect(service.settings.data_dir / "service.sqlite") as db:
        left = db.execute("SELECT COUNT(*) FROM auto_updates WHERE workspace = 'purging'")
        assert left.fetchone() == (0,)
    with service.client(token) as client:
        fresh = client.get(f"{V1}/purging/updates").json()
        assert (fresh["policies"], fresh["last_check"], fresh["next_check"]) == ([], None, None)


@pytest.fixture(scope="module")
def scheduled_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scheduled")


def wait_until_installed(home: Path, name: str, version: str) -> None:
    """Read the workspace's host state from its file (no request that would start it)."""
    deadline = time.monotonic() + 60
    while True:
        state = HostState(HostPaths(home).state_file)
        try:
            found = state.get(name)
        finally:
            state.close()
        if found is not None and found.version == version:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{name} is still {found.version if found else 'missing'}, not {version}")
        time.sleep(0.2)


def auto_updated(client: httpx.Client, ws: str, name: str, count: int) -> list[dict[str, Any]]:
    """The plugin's ``auto-update`` audit rows, once there are ``count`` of them."""
    deadline = time.monotonic() + 60
    while True:
        rows = [a for a in trail(client, ws, name) if a["action"] == "auto-update"]
        if len(rows) >= count:
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"{name} has {len(rows)} auto-update audit rows, not {count}")
        time.sleep(0.1)


def test_the_schedule_checks_by_itself_and_outlives_a_restart(
    market: Market, scheduled_root: Path
) -> None:
    settings = settings_for(scheduled_root, market, auto_update_interval_s=1)
    publish(market, "acme.ticking", "1.0.0")
    with serving(settings) as first:
        token = first.workspace("ticking")
        with first.client(token) as client:
            install(client, "ticking", "acme.ticking")
            set_policy(client, "ticking", "acme.ticking", "patch")
            publish(market, "acme.ticking", "1.0.1")
            wait_until_installed(first.home("ticking"), "acme.ticking", "1.0.1")
            rows = auto_updated(client, "ticking", "acme.ticking", 1)
            assert [(a["outcome"], a["detail"]["version"]) for a in rows] == [("ok", "1.0.1")]
    publish(market, "acme.ticking", "1.0.2")  # while the service is down
    # an auto-update decided for a version that is no longer installed (an operator's update
    # ran in between): it must be dropped, never applied over what is there now
    store = SqlTaskStore(settings.data_dir / "workspaces" / "ticking" / "tasks.sqlite")
    payload = {
        "kind": "update", "workspace": "ticking", "target": "acme.ticking",
        "actor": "auto-update", "consent": [], "version": "1.0.2",
        "auto_update": {"policy": "patch", "from": "1.0.0"},
    }  # fmt: skip
    stale = NewTask("", OPERATION_TASK, payload, 3, id="5" * 32)
    store.insert(stale, time.time())
    store.close()
    with serving(settings) as second:
        # nobody asks anything: the workspace's queue is resumed and runs its next check
        wait_until_installed(second.home("ticking"), "acme.ticking", "1.0.2")
        with second.client(token) as client:
            dropped = wait_for(client, "ticking", {"id": stale.id})
            assert (dropped["state"], dropped["error"]["code"]) == ("failed", "conflict")
            assert "is 1.0.1 now, not 1.0.0" in dropped["error"]["message"]
            rows = auto_updated(client, "ticking", "acme.ticking", 3)
            [why] = [a for a in rows if a["detail"].get("operation") == stale.id]
            assert (why["action"], why["outcome"]) == ("auto-update", "failed")
            assert why["detail"]["reason"].endswith("tried again later")
            assert second.service.store.auto_updates("ticking")["acme.ticking"].failed == {}
            ok = [a["detail"]["version"] for a in rows
                  if a["action"] == "auto-update" and a["outcome"] == "ok"]  # fmt: skip
            assert ok == ["1.0.2", "1.0.1"]  # newest first
            queued = client.get(
                f"{V1}/ticking/tasks", params={"type": AUTO_UPDATE_TASK, "state": "queued"}
            ).json()["items"]
            assert len(queued) <= 1  # one chain, not one per restart or per check


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@pytest.fixture
def browser(service: Service) -> Iterator[tuple[httpx.Client, str]]:
    token = service.workspace("forms-updates")
    with service.client(follow_redirects=False) as browser:
        form = browser.get("/workspaces")
        done = browser.post("/workspaces/signin", data={"token": token, "csrf": csrf_of(form)})
        assert done.status_code == 303, done.text
        yield browser, token


def test_the_pages_show_updates_and_set_policies_through_csrf_checked_forms(
    service: Service, market: Market, browser: tuple[httpx.Client, str]
) -> None:
    pages, token = browser
    ws = "forms-updates"
    publish(market, "acme.paged", "1.0.0", extra=NETWORK)
    with service.client(token) as client:
        install(client, ws, "acme.paged", ["network 'api.example.com'"])
    publish(market, "acme.paged", "1.1.0", extra=GROWS)
    service.service.workspace(ws).forget_updates()

    workspace = pages.get(f"/workspaces/{ws}")
    assert 'data-testid="nav-updates"' in workspace.text
    assert 'data-testid="updates-link">Updates (1 available)<' in workspace.text
    assert f'href="/workspaces/{ws}/updates#update-acme-paged" data-testid="update-link"' in (
        workspace.text
    )
    page = pages.get(f"/workspaces/{ws}/updates")
    assert page.status_code == 200, page.text
    assert 'data-testid="update" data-plugin="acme.paged"' in page.text
    assert 'data-testid="added-line">+ network &#39;cdn.example.net&#39;<' in page.text
    assert (
        'data-testid="added-line" class="permission-danger" data-dangerous>'
        "+ secrets.reveal &#39;jira&#39;<"
    ) in page.text
    assert "The registry gives no changelog for this version." in page.text
    assert 'data-testid="update-consent"' in page.text
    assert '<input type="hidden" name="permission" value="secrets.reveal &#39;jira&#39;">' in (
        page.text
    )
    csrf = csrf_of(page)

    action = f"/workspaces/{ws}/installations/acme.paged/auto-update"
    for data in ({"policy": "patch"}, {"policy": "patch", "csrf": "0" * 64}):
        refused = pages.post(action, data=data)
        assert refused.status_code == 403, refused.text
    assert service.service.store.auto_updates(ws) == {}
    bad = pages.post(action, data={"policy": "always", "csrf": csrf})
    assert (bad.status_code, bad.headers["location"]) == (303, f"/workspaces/{ws}/updates")
    assert "is not a policy" in pages.get(bad.headers["location"]).text
    assert service.service.store.auto_updates(ws) == {}

    # an outside address in "back" is never followed
    done = pages.post(
        action, data={"policy": "minor", "csrf": csrf, "back": "https://evil.example"}
    )
    assert (done.status_code, done.headers["location"]) == (303, f"/workspaces/{ws}/updates")
    assert service.service.store.auto_updates(ws)["acme.paged"].policy == "minor"
    shown = pages.get(done.headers["location"])
    assert "Auto-update of acme.paged: minor and patch updates (1.x) on their own." in shown.text
    assert 'data-testid="policy-row" data-plugin="acme.paged" data-policy="minor"' in shown.text

    installation = pages.get(f"/workspaces/{ws}/installations/acme.paged")
    assert 'id="auto-update-form"' in installation.text
    assert '<option value="minor" selected>' in installation.text
    back = pages.post(action, data={"policy": "none", "csrf": csrf, "back": "installation"})
    assert back.headers["location"] == f"/workspaces/{ws}/installations/acme.paged"
    assert service.service.store.auto_updates(ws)["acme.paged"].policy == "none"

    assert pages.post(f"/workspaces/{ws}/updates/check", data={}).status_code == 403
    checked = pages.post(f"/workspaces/{ws}/updates/check", data={"csrf": csrf})
    assert checked.status_code == 303
    after = pages.get(checked.headers["location"])
    assert "No plugin has an auto-update policy" in after.text
