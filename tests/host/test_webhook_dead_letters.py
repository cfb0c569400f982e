"""Dead letters of outbound webhooks, as the operator sees them: the host service's API
(``GET .../deliveries?state=dead``, ``POST .../deliveries/{id}/redeliver``) and
``plugport webhooks dead/redeliver --home``, the workspace page's "Redeliver" button, and
deleting a workspace, which takes its outbox with it."""

from __future__ import annotations

import base64
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from plugport.host.tasks import engine_for
from plugport.host.tasks.outbound import OUTBOUND_TASK
from plugport.host.tasks.store import NewTask, SqlTaskStore
from plugport.runtime.supervisor import PluginInstall
from tests.host._service import Service
from tests.host.test_service_pages import csrf_of, signed_in
from tests.runtime._supervised import write_plugin

PAYLOAD_SECRET = b'{"token":"pay-L0ad-Secr3t"}'


def _dead_letter(state_dir: Path, delivery_id: str = "d1") -> None:
    """A dead outbound delivery in the home's task queue, as a sender that gave up leaves it
    (``state_dir``: the home's runtime directory)."""
    store = SqlTaskStore(state_dir.parent / "tasks.sqlite")
    try:
        now = time.time()
        payload = {
            "target": "https://hooks.example.com/in/x",
            "body": base64.b64encode(PAYLOAD_SECRET).decode(),
            "headers": [],
            "sign_with": None,
        }
        store.insert(NewTask("acme.hooks", OUTBOUND_TASK, payload, 8, id=delivery_id), now)
        store.claim(delivery_id, "n1", now, 30)
        store.finish(
            delivery_id,
            "n1",
            "dead",
            now,
            result={"status": 410},
            error="HTTP 410: the receiver refused the delivery",
            error_kind="gave_up",
            outcome="error",
        )
    finally:
        store.close()


def test_the_api_lists_dead_letters_and_redelivers_them(service: Service) -> None:
    token = service.workspace("hooks")
    _dead_letter(service.home("hooks") / "runtime")
    ws = "/api/v1/workspaces/hooks"
    with service.client(token) as client:
        listed = client.get(f"{ws}/deliveries", params={"state": "dead"})
        assert listed.status_code == 200, listed.text
        [row] = listed.json()["items"]
        assert row["id"] == "d1"
        assert row["last_status"] == 410
        assert "pay-L0ad" not in listed.text  # the body is never shown
        redelivered = client.post(f"{ws}/deliveries/d1/redeliver")
        assert redelivered.status_code == 200, redelivered.text
        assert redelivered.json()["state"] in ("pending", "sending")
        assert client.get(f"{ws}/deliveries", params={"state": "dead"}).json()["items"] == []
        again = client.post(f"{ws}/deliveries/d1/redeliver")
        assert again.status_code == 400
        assert "not dead" in again.json()["error"]["message"]
        missing = client.post(f"{ws}/deliveries/nope/redeliver")
        assert missing.status_code == 404
        bad = client.get(f"{ws}/deliveries", params={"state": "lost"})
        assert bad.status_code == 422
        trail = client.get(f"{ws}/audit", params={"subject": "acme.hooks"}).json()["items"]
        [ok] = [a for a in trail if a["action"] == "redeliver" and a["outcome"] == "ok"]
        assert ok["actor"].startswith("token:")
        assert ok["detail"] == {"delivery": "d1", "target_host": "hooks.example.com"}
        assert any(a["action"] == "redeliver" and a["outcome"] == "refused" for a in trail)


def _dead_ids(page_text: str) -> list[str]:
    return re.findall(r'data-testid="dead-row" data-id="([^"]+)"', page_text)


def test_the_workspace_page_redelivers_a_dead_letter(service: Service) -> None:
    token = service.workspace("hookpage")
    _dead_letter(service.home("hookpage") / "runtime", "p1")
    with signed_in(service, token) as browser:
        page = browser.get("/workspaces/hookpage")
        assert page.status_code == 200, page.text
        assert _dead_ids(page.text) == ["p1"]
        assert 'data-testid="redeliver" data-id="p1"' in page.text
        assert "pay-L0ad" not in page.text
        action = "/workspaces/hookpage/deliveries/p1/redeliver"

        # refused without the page's CSRF token, or with another session's: nothing changes
        assert browser.post(action).status_code == 403
        assert browser.post(action, data={"csrf": "forged"}).status_code == 403
        assert _dead_ids(browser.get("/workspaces/hookpage").text) == ["p1"]

        done = browser.post(action, data={"csrf": csrf_of(page)})
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/workspaces/hookpage"
        after = browser.get("/workspaces/hookpage")
        assert 'data-testid="flash" data-kind="success">Delivery p1 to' in after.text
        assert _dead_ids(after.text) == []
        # the audit trail names the signed-in operator, not the runtime
        assert re.search(
            r'data-action="redeliver" data-subject="acme.hooks">\s*<td>[^<]*</td><td>token:',
            after.text,
        ), after.text

        # a delivery that is no longer dead: refused with a message, nothing else changes
        again = browser.post(action, data={"csrf": csrf_of(after)})
        assert again.status_code == 303
        refused = browser.get("/workspaces/hookpage")
        assert 'data-kind="error">Could not redeliver p1:' in refused.text
        assert "not dead" in refused.text

    # signed out: back to the sign-in form, nothing redelivered
    with service.client(follow_redirects=False) as anonymous:
        signed_out = anonymous.post(action, data={"csrf": "x"})
        assert signed_out.status_code == 303
        assert signed_out.headers["location"] == "/workspaces"
    trail = service.service.workspace("hookpage").host.audit(subject="acme.hooks")
    assert [a.outcome for a in trail if a.action == "redeliver"] == ["refused", "ok"]


def test_the_cli_lists_and_redelivers(run_cli: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _dead_letter(home / "runtime", "d2")
    listed = run_cli("webhooks", "dead", "--home", str(home))
    assert listed.exit_code == 0, listed.output
    assert "d2" in listed.output
    assert "HTTP 410" in listed.output
    assert "pay-L0ad" not in listed.output
    done = run_cli("webhooks", "redeliver", "d2", "--home", str(home))
    assert done.exit_code == 0, done.output
    assert "queued again" in done.output
    assert "no dead deliveries" in run_cli("webhooks", "dead", "--home", str(home)).output
    refused = run_cli("webhooks", "redeliver", "d2", "--home", str(home))
    assert refused.exit_code != 0
    assert "not dead" in refused.output


def _receiver() -> tuple[ThreadingHTTPServer, list[str]]:
    """A real HTTP server on 127.0.0.1 that answers 204 and records each delivery's id."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append(self.headers.get("x-plugport-delivery", ""))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, received


def test_deleting_a_workspace_removes_its_outbox_and_sends_nothing_after(
    service: Service, tmp_path: Path
) -> None:
    token = service.workspace("outgone")
    home = service.home("outgone")
    server, received = _receiver()
    endpoint = f"127.0.0.1:{server.server_address[1]}"
    try:
        with service.client(token) as client:
            assert client.get("/api/v1/workspaces/outgone/deliveries").status_code == 200
            # the plugin as its host knows it (its grants make the sender send its rows)
            plugin = write_plugin(
                tmp_path,
                "acme.hooks",
                "class Main(Plugin):\n    pass\n",
                '[permissions]\nwebhooks.deliver = ["https://hooks.example.com/in/"]\n',
            )
            runtime = service.service.workspace("outgone").host.supervisor
            runtime.add(
                PluginInstall(plugin.manifest, plugin.code_dir, local_endpoints=(endpoint,))
            )
            url = f"http://{endpoint}/in/x"
            payload = {"target": url, "body": "e30=", "headers": [], "sign_with": None}
            store = SqlTaskStore(home / "tasks.sqlite")  # as the plugin's deliver() leaves them
            queue = engine_for(home / "tasks-queue.sqlite")
            try:
                store.insert(
                    NewTask("acme.hooks", OUTBOUND_TASK, payload, 8, id="now"), time.time()
                )
                queue.push("now")
                deadline = time.monotonic() + 10
                while received != ["now"]:  # the queue's runner sends it
                    assert time.monotonic() < deadline, received
                    time.sleep(0.02)
                later = time.time() + 1.5  # pending, due after the deletion
                task = NewTask("acme.hooks", OUTBOUND_TASK, payload, 8, due_at=later, id="later")
                store.insert(task, time.time())
                queue.push("later", eta=later)
            finally:
                store.close()
                queue.close()
            _dead_letter(home / "runtime", "dead1")
            states = {
                d["id"]: d["state"]
                for d in client.get("/api/v1/workspaces/outgone/deliveries").json()["items"]
            }
            assert states == {"now": "done", "later": "pending", "dead1": "dead"}

        with service.client(service.admin) as admin:
            assert admin.delete("/api/v1/workspaces/outgone").status_code == 200
        assert not home.exists()
        assert not (home / "tasks.sqlite").exists()
        time.sleep(2.5)  # past "later"'s due time
        assert received == ["now"]  # the pending one was never sent

        # a workspace made again under the name starts with an empty outbox
        again = service.workspace("outgone")
        with service.client(again) as client:
            assert client.get("/api/v1/workspaces/outgone/deliveries").json()["items"] == []
        assert received == ["now"]
    finally:
        server.shutdown()
        server.server_close()
