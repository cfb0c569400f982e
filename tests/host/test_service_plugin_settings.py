"""A plugin's settings through the host service's API: read with defaults, required and missing;
set and unset one key, checked against the schema; a secret never shown; only the workspace's
own token (or an admin's) may write, and every refusal changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.host._service import Market, Service, market_at, serving, settings_for, wait_for

pytestmark = pytest.mark.slow
SECRET = "hunter2-very-secret"  # noqa: S105 a test value that must never come back


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Market, Service]]:
    root = tmp_path_factory.mktemp("settings")
    with market_at(root / "market") as market, serving(settings_for(root, market)) as service:
        yield market, service


def _installed(host: Service, ws: str) -> str:
    token = host.workspace(ws)
    with host.client(token) as api:
        body = {"plugin": "acme.tuned", "consent": ["config"]}
        started = api.post(f"/api/v1/workspaces/{ws}/installations", json=body)
        assert wait_for(api, ws, started.json())["state"] == "succeeded"
    return token


def _settings(api: httpx.Client, ws: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/workspaces/{ws}/installations/acme.tuned/settings")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_read_set_unset_and_enable(service: tuple[Market, Service]) -> None:
    _, host = service
    token = _installed(host, "tune")
    url = "/api/v1/workspaces/tune/installations/acme.tuned"
    with host.client(token) as api:
        first = _settings(api, "tune")
        assert first["values"] == {"retries": 3, "mode": "fast", "verbose": False}
        assert first["missing"] == ["channel", "token"]
        assert first["required"] == ["channel", "token"]
        assert first["secrets"] == {"token": "not set"}
        assert first["schema"]["properties"]["retries"]["default"] == 3
        row = api.get(url).json()
        assert (row["state"], row["needs_settings"]) == ("disabled", ["channel", "token"])
        refused = api.post(f"{url}/enable")
        assert refused.status_code == 400
        assert "needs settings: channel, token" in refused.json()["error"]["message"]

        assert api.put(f"{url}/settings/channel", json={"value": "#ops"}).status_code == 200
        put = api.put(f"{url}/settings/token", json={"value": SECRET})
        assert put.status_code == 200, put.text
        assert SECRET not in put.text
        assert put.json()["values"]["token"] == "set"  # noqa: S105 the word, not a secret
        assert put.json()["secrets"] == {"token": "set"}
        assert put.json()["missing"] == []
        assert (
            api.put(f"{url}/settings/retries", json={"value": 5}).json()["values"]["retries"] == 5
        )
        unset = api.delete(f"{url}/settings/retries")
        assert unset.status_code == 200
        assert unset.json()["values"]["retries"] == 3  # the default again
        assert api.post(f"{url}/enable").json()["enabled"] is True
        audit = api.get("/api/v1/workspaces/tune/audit", params={"subject": "acme.tuned"}).text
        assert "configure" in audit
        assert SECRET not in audit
    stored = host.service.workspace("tune").host.stored_settings("acme.tuned")
    assert stored == {"channel": "#ops", "token": SECRET}


@pytest.mark.parametrize(
    ("key", "value", "rule", "status"),
    [
        ("retries", -1, "minimum", 400),
        ("retries", "many", "type", 400),
        ("mode", "medium", "enum", 400),
        ("colour", "red", "unknown", 400),
        ("token", "short", "minLength", 400),
    ],
)
def test_a_refused_value_names_key_and_rule_and_changes_nothing(
    service: tuple[Market, Service], key: str, value: Any, rule: str, status: int
) -> None:
    _, host = service
    ws = f"bad-{rule.lower()}"
    token = _installed(host, ws)
    with host.client(token) as api:
        before = _settings(api, ws)
        url = f"/api/v1/workspaces/{ws}/installations/acme.tuned/settings/{key}"
        refused = api.put(url, json={"value": value})
        assert refused.status_code == status, refused.text
        error = refused.json()["error"]
        assert error["details"]["field"] == f"config.{key}"
        assert error["details"]["rule"] == rule
        assert f"config.{key}" in error["message"]
        if key == "token":
            assert "short" not in refused.text  # a secret's value is never quoted
        assert _settings(api, ws) == before
    assert host.service.workspace(ws).host.stored_settings("acme.tuned") == {}


def test_only_the_workspaces_own_token_writes(service: tuple[Market, Service]) -> None:
    _, host = service
    _installed(host, "owner")
    other = host.workspace("stranger")
    url = "/api/v1/workspaces/owner/installations/acme.tuned/settings"
    with host.client(other) as api:
        assert api.get(url).status_code == 403
        assert api.put(f"{url}/channel", json={"value": "#x"}).status_code == 403
        assert api.delete(f"{url}/channel").status_code == 403
    with host.client() as anonymous:
        assert anonymous.put(f"{url}/channel", json={"value": "#x"}).status_code == 401
    assert host.service.workspace("owner").host.stored_settings("acme.tuned") == {}
