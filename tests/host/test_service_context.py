"""The host service per workspace: the operator's policy in the workspace's home (private
targets a plugin may reach, shown by ``GET .../policy``), and who acts: each operation runs
with its own caller's context, so concurrent changes by different tokens are audited under
their own actors."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.host._plugins import write
from tests.host._service import NETWORK, Market, Service, wait_for

V1 = "/api/v1/workspaces"

FETCHER = """\
from plugport.errors import PermissionDeniedError
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("get")
    async def get(self, url):
        try:
            response = await self.api.net.fetch(url)
        except PermissionDeniedError as exc:
            return {"refused": str(exc)}
        return {"status": response.status, "body": response.text()}
"""


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"on-premises"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def listener() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _fetcher(market: Market, name: str) -> None:
    source = write(market.root / "src-context", name, "1.0.0", code=FETCHER, extra=NETWORK)
    manifest = source / "plugport.toml"
    manifest.write_text(manifest.read_text().replace("greet = 0", "get = 0"))
    market.publish(source)


def test_a_workspace_policy_lets_its_plugin_reach_a_private_target(
    service: Service, market: Market, listener: int
) -> None:
    _fetcher(market, "acme.onprem")
    token = service.workspace("onprem")
    policy_file = service.home("onprem") / "policy.toml"
    policy_file.write_text(f'[private-targets]\n"acme.onprem" = ["127.0.0.1:{listener}"]\n')
    with service.client(token) as client:
        shown = client.get(f"{V1}/onprem/policy")
        assert shown.status_code == 200, shown.text
        assert shown.json() == {
            "workspace": "onprem",
            "file": str(policy_file.absolute()),
            "private_targets": {"acme.onprem": [f"127.0.0.1:{listener}"]},
        }
        started = client.post(
            f"{V1}/onprem/installations",
            json={"plugin": "acme.onprem", "consent": ["network 'api.example.com'"]},
        )
        assert wait_for(client, "onprem", started.json())["state"] == "succeeded"
        ran = client.post(
            f"{V1}/onprem/installations/acme.onprem/execute",
            json={"hook": "get", "input": {"url": f"http://127.0.0.1:{listener}/issues"}},
        )
        assert ran.status_code == 200, ran.text
        assert ran.json()["result"] == {"status": 200, "body": "on-premises"}
        other = listener + 1 if listener < 65535 else listener - 1
        ran = client.post(
            f"{V1}/onprem/installations/acme.onprem/execute",
            json={"hook": "get", "input": {"url": f"http://127.0.0.1:{other}/"}},
        )
        line = f'"acme.onprem" = ["127.0.0.1:{listener}", "127.0.0.1:{other}"]'
        assert line in ran.json()["result"]["refused"]
        audit = client.get(f"{V1}/onprem/audit", params={"subject": "acme.onprem"}).json()
        reasons = [row["detail"].get("reason", "") for row in audit["items"]]
        assert any(
            r.startswith(f"reached private target 127.0.0.1:{listener} ")
            and f"allowed by the operator's policy ([private-targets] in {policy_file.absolute()})"
            in r
            for r in reasons
        ), reasons


def test_a_bad_workspace_policy_is_a_400_naming_the_file(service: Service) -> None:
    token = service.workspace("badpolicy")
    policy_file = service.home("badpolicy") / "policy.toml"
    policy_file.write_text('[private-targets]\n"acme.onprem" = ["127.0.0.1"]\n')
    with service.client(token) as client:
        refused = client.get(f"{V1}/badpolicy/policy")
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]["message"]
    assert f"{policy_file.absolute()} [private-targets] 'acme.onprem'" in message
    assert "write HOST:PORT" in message


def test_a_workspace_without_a_policy_allows_nothing_beyond_grants(service: Service) -> None:
    token = service.workspace("plain")
    with service.client(token) as client:
        shown = client.get(f"{V1}/plain/policy").json()
    assert shown["private_targets"] == {}
    assert not Path(shown["file"]).exists()
