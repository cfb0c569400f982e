"""The host service per workspace: the operator's policy in the workspace's home (private
targets a plugin may reach, shown by ``GET .../policy``), and who acts: each operation runs
with its own caller's context, so concurrent changes by different tokens are audited under
their own actors."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.host import PluginHost
from plugport.host.consent import ConsentRequest
from plugport.host.context import OperationContext
from plugport.host.state import HostAudit
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


# --- who acts -------------------------------------------------------------------------------------


def _rows(client: httpx.Client, ws: str) -> list[tuple[str, str, str, str]]:
    items = client.get(f"{V1}/{ws}/audit", params={"limit": 1000}).json()["items"]
    return [(row["actor"], row["action"], row["subject"], row["outcome"]) for row in items]


def test_concurrent_operations_by_two_tokens_record_their_own_actors(service: Service) -> None:
    first = service.workspace("pair")
    with service.client(service.admin) as admin:
        made = admin.post("/api/v1/tokens", json={"workspace": "pair"})
    assert made.status_code == 201, made.text
    second = made.json()["token"]
    with service.client(first) as one, service.client(second) as two:
        me_one = f"token:{first.split('_')[1]}"  # pph_PREFIX_SECRET
        me_two = f"token:{made.json()['prefix']}"
        assert me_one != me_two
        # Both in flight at once: the second is queued while the first runs. The first asks
        # for nothing to consent to; the second's consent is its own and grants only gamma's.
        started = [
            one.post(f"{V1}/pair/installations", json={"plugin": "acme.alpha"}).json(),
            two.post(
                f"{V1}/pair/installations",
                json={"plugin": "acme.gamma", "consent": ["network 'api.example.com'"]},
            ).json(),
        ]
        assert [o["actor"] for o in started] == [me_one, me_two]
        done = [wait_for(one, "pair", started[0]), wait_for(two, "pair", started[1])]
        assert [o["state"] for o in done] == ["succeeded", "succeeded"], done
        assert any(p["step"].startswith("acme.gamma 1.0.0") for p in done[1]["progress"])
        assert not any(p["step"].startswith("acme.gamma") for p in done[0]["progress"])

        # Quick changes by both tokens at the same time, from two threads.
        def disable(client: httpx.Client, name: str) -> int:
            return client.post(f"{V1}/pair/installations/{name}/disable").status_code

        with ThreadPoolExecutor(2) as pool:
            codes = list(
                pool.map(disable, (one, two), ("acme.gamma", "acme.alpha"))  # crossed over
            )
        assert codes == [200, 200]
        rows = _rows(one, "pair")
    assert (me_one, "install", "acme.alpha", "ok") in rows
    assert (me_two, "install", "acme.gamma", "ok") in rows
    assert (me_one, "disable", "acme.gamma", "ok") in rows
    assert (me_two, "disable", "acme.alpha", "ok") in rows
    assert not any(actor == "host-service" for actor, action, _, _ in rows if action != "recover")
    # Nothing about a caller is left on the shared host.
    assert service.service.workspace("pair").host.actor == "host-service"


def test_a_refused_consent_belongs_to_its_own_operation(service: Service) -> None:
    token = service.workspace("consents")
    with service.client(token) as client:
        refused = client.post(f"{V1}/consents/installations", json={"plugin": "acme.gamma"})
        allowed = client.post(f"{V1}/consents/installations", json={"plugin": "acme.alpha"})
        failed = wait_for(client, "consents", refused.json())
        assert failed["state"] == "failed"
        assert failed["error"]["details"]["name"] == "acme.gamma"
        assert wait_for(client, "consents", allowed.json())["state"] == "succeeded"


@pytest.mark.slow
def test_concurrent_host_calls_each_audit_their_own_context(tmp_path: Path) -> None:
    """On the host itself: two installs at once, each with its own context; every row either
    writes (the fetcher's dev-mode row, the installer's install row) names its own actor, and
    each one's consent is asked only of its own context."""
    sources = [
        write(tmp_path / "src", name, "1.0.0", extra=NETWORK) for name in ("xx.one", "xx.two")
    ]
    asked: dict[str, list[str]] = {"alice": [], "bob": []}

    def consent_of(who: str) -> Any:
        def consent(request: ConsentRequest) -> bool:
            asked[who].append(request.name)
            return True

        return consent

    async def main() -> list[HostAudit]:
        async with PluginHost(app="myapp", app_version="2.4.0", home=tmp_path / "home") as host:
            await asyncio.gather(
                host.install(
                    str(sources[0]), context=OperationContext("alice", consent_of("alice"))
                ),
                host.install(str(sources[1]), context=OperationContext("bob", consent_of("bob"))),
            )
            await asyncio.gather(
                host.disable("xx.two", context=OperationContext("alice")),
                host.uninstall("xx.one", context=OperationContext("bob")),
            )
            assert host.actor not in {"alice", "bob"}
            return host.audit(limit=1000)

    rows = {(a.actor, a.action, a.subject) for a in asyncio.run(main()) if a.actor != "runtime"}
    assert asked == {"alice": ["xx.one"], "bob": ["xx.two"]}
    assert {
        ("alice", "dev-mode", "xx.one"),
        ("alice", "install", "xx.one"),
        ("bob", "dev-mode", "xx.two"),
        ("bob", "install", "xx.two"),
        ("alice", "disable", "xx.two"),
        ("bob", "uninstall", "xx.one"),
    } <= rows
    assert not {actor for actor, _, _ in rows} - {"alice", "bob"}
