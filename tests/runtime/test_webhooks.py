"""Outbound webhooks end to end: a real plugin in a real worker calls ``api.webhooks.deliver``,
the host stores it, signs it with a key the plugin never sees and POSTs it to a real receiver on
127.0.0.1; retries, dead letters, redelivery, refusals, the rate limit, purge, and a host killed
with ``kill -9`` that resumes on start."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import InvalidInputError, PermissionDeniedError
from plugport.runtime.broker import NetOptions
from plugport.runtime.capabilities._delivery_rules import Backoff, WebhookOptions
from plugport.runtime.capabilities._resolver import StaticResolver
from plugport.runtime.capabilities._secret_source import MemorySecrets
from plugport.runtime.outbox import SqliteOutbox
from plugport.runtime.supervisor import PluginInstall, Supervisor
from tests.runtime._supervised import config_for, write_plugin

pytestmark = pytest.mark.slow

KEY = "whk-K3y-7c6b5a49"  # a test's stand-in, searched for in every output
PLUGIN = "acme.hooks"

BODY = """
class Main(Plugin):
    @command("w.deliver")
    async def deliver(self, target, payload, sign_with=None, key=None, headers=None):
        return await self.api.webhooks.deliver(
            target, payload, headers=headers, sign_with=sign_with, idempotency_key=key
        )

    @command("w.sign")
    async def sign(self, data):
        return await self.api.secrets.sign("hook", data)
"""

MANIFEST = """
[credentials.hook]
kind = "hmac"

[permissions]
webhooks.deliver = ["https://hooks.example.com/in/"]

[contributes]
commands = [{ id = "w.deliver", title = "Deliver" }, { id = "w.sign", title = "Sign" }]
"""


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1: answers each POST with the next of ``statuses`` (then
    200), records what arrived; ``hang`` holds answers back."""

    statuses: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    hang: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/in/x") -> str:
        return f"http://{self.endpoint}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.received.append({"path": self.path, "headers": headers, "body": body})
            while state.hang.is_set():
                time.sleep(0.01)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if status in (301, 302):
                self.send_header("location", f"http://{state.endpoint}/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    state.hang.clear()
    server.shutdown()
    server.server_close()


FAST = WebhookOptions(backoff=Backoff(base_s=0.01, cap_s=0.05, max_attempts=10), poll_s=0.05)


def _install(tmp_path: Path, receiver: Receiver) -> PluginInstall:
    install = write_plugin(tmp_path, PLUGIN, BODY, MANIFEST)
    return PluginInstall(install.manifest, install.code_dir, local_endpoints=(receiver.endpoint,))


async def _settled(runtime: Supervisor, delivery_id: str, *, timeout_s: float = 10) -> str:
    async with asyncio.timeout(timeout_s):
        while (state := runtime.outbox.get(delivery_id).state) in ("pending", "sending"):
            await asyncio.sleep(0.01)
    return state


def _run(tmp_path: Path, install: PluginInstall, scenario: Any, **config: Any) -> Supervisor:
    config.setdefault("webhooks", FAST)
    holder: list[Supervisor] = []

    async def main() -> None:
        async with Supervisor(config_for(tmp_path, **config)) as runtime:
            holder.append(runtime)
            assert isinstance(runtime.services.secrets, MemorySecrets)
            runtime.services.secrets.set(PLUGIN, "hook", KEY.encode())
            runtime.add(install)
            await runtime.start()
            await scenario(runtime)

    asyncio.run(main())
    return holder[0]


def _audit_text(runtime: Supervisor) -> str:
    return "\n".join(e.reason for e in runtime.audit.query(plugin=PLUGIN, limit=1000))


def test_a_signed_delivery_reaches_the_receiver_and_the_key_stays_in_the_host(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: dict[str, Any] = {}

    async def scenario(runtime: Supervisor) -> None:
        delivery_id = await runtime.run_command(
            PLUGIN, "w.deliver", [receiver.url(), {"event": "opened", "n": 1}, "hook"]
        )
        assert runtime.outbox.get(delivery_id).state in ("pending", "sending", "done")
        assert await _settled(runtime, delivery_id) == "done"
        seen["id"] = delivery_id
        seen["row"] = runtime.outbox.get(delivery_id)
        seen["audit"] = _audit_text(runtime)
        seen["api"] = json.dumps([d.public() for d in runtime.outbox.list()])

    _run(tmp_path, _install(tmp_path, receiver), scenario)
    [request] = receiver.received
    headers, body = request["headers"], request["body"]
    assert json.loads(body) == {"event": "opened", "n": 1}
    assert headers["content-type"] == "application/json"
    assert headers["x-plugport-delivery"] == seen["id"]
    timestamp = headers["x-plugport-timestamp"]
    expected = hmac.new(KEY.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert headers["x-plugport-signature"] == f"sha256={expected.hexdigest()}"
    assert seen["row"].attempts == 1
    assert seen["row"].last_status == 200
    # a first-time success is an audit row too ("audits each use"): host, result, attempt
    assert f"delivery {seen['id']} to 127.0.0.1: done (HTTP 200); attempt 1 of" in seen["audit"]
    for output in (seen["audit"], seen["api"], caplog.text, json.dumps(headers)):
        assert KEY not in output


def test_server_errors_are_retried_until_the_receiver_takes_it(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses[:] = [500, 503]
    rows: list[Any] = []

    async def scenario(runtime: Supervisor) -> None:
        delivery_id = await runtime.run_command(PLUGIN, "w.deliver", [receiver.url(), [1]])
        assert await _settled(runtime, delivery_id) == "done"
        rows.append(runtime.outbox.get(delivery_id))
        async with asyncio.timeout(10):  # the row is committed done before its audit line
            while "attempt 3 of 10" not in _audit_text(runtime):
                await asyncio.sleep(0.01)
        rows.append(_audit_text(runtime))

    _run(tmp_path, _install(tmp_path, receiver), scenario)
    assert rows[0].attempts == 3
    assert len(receiver.received) == 3
    assert len({r["headers"]["x-plugport-delivery"] for r in receiver.received}) == 1
    assert "HTTP 500" in rows[1]
    assert "attempt 3 of 10" in rows[1]


def test_a_refusal_is_dead_at_once_and_redelivery_sends_it_again(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses[:] = [410]
    found: dict[str, Any] = {}

    async def scenario(runtime: Supervisor) -> None:
        delivery_id = await runtime.run_command(PLUGIN, "w.deliver", [receiver.url(), {"a": 1}])
        assert await _settled(runtime, delivery_id) == "dead"
        found["dead"] = runtime.outbox.get(delivery_id)
        found["listed"] = [d.id for d in runtime.outbox.list(state="dead")]
        runtime.outbox.redeliver(delivery_id, time.time())
        runtime.webhooks.wake()
        assert await _settled(runtime, delivery_id) == "done"
        found["done"] = runtime.outbox.get(delivery_id)
        with pytest.raises(InvalidInputError, match="not dead"):
            runtime.outbox.redeliver(delivery_id, time.time())

    _run(tmp_path, _install(tmp_path, receiver), scenario)
    dead = found["dead"]
    assert dead.attempts == 1
    assert dead.last_status == 410
    assert "refused" in dead.last_error
    assert found["listed"] == [dead.id]
    assert found["done"].attempts == 1  # a fresh count after redelivery
    assert len(receiver.received) == 2


def test_a_redirect_is_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses[:] = [302]
    found: dict[str, Any] = {}

    async def scenario(runtime: Supervisor) -> None:
        delivery_id = await runtime.run_command(PLUGIN, "w.deliver", [receiver.url(), 1])
        assert await _settled(runtime, delivery_id) == "dead"
        found["row"] = runtime.outbox.get(delivery_id)

    _run(tmp_path, _install(tmp_path, receiver), scenario)
    assert "do not follow redirects" in found["row"].last_error
    assert [r["path"] for r in receiver.received] == ["/in/x"]


def test_refused_deliveries_store_nothing(tmp_path: Path, receiver: Receiver) -> None:
    """Undeclared targets, plain http, another local port, a granted name that resolves to a
    private address, a reserved header, an oversized payload, an unknown key."""
    resolver = StaticResolver({"hooks.example.com": ["10.1.2.3"]})

    async def scenario(runtime: Supervisor) -> None:
        refusals = [
            (["https://evil.example.com/in/x", 1], PermissionDeniedError, "not in the plugin"),
            (["https://hooks.example.com/other", 1], PermissionDeniedError, "none of the granted"),
            (["http://hooks.example.com/in/x", 1], PermissionDeniedError, "https only"),
            (["http://127.0.0.1:1/in/x", 1], PermissionDeniedError, "IP address"),
            (["https://hooks.example.com/in/x", 1], PermissionDeniedError, "10.1.2.3"),
            ([receiver.url(), 1, "nokey"], PermissionDeniedError, "no hmac credential"),
            ([receiver.url(), "x" * (1024**2 + 1)], Exception, "over the 1048576-byte"),
        ]
        for args, error, message in refusals:
            with pytest.raises(error, match=message):
                await runtime.run_command(PLUGIN, "w.deliver", args)
        with pytest.raises(Exception, match="set by the host"):
            await runtime.run_command(
                PLUGIN, "w.deliver", [receiver.url(), 1], {"headers": {"X-Plugport-Signature": "x"}}
            )
        assert runtime.outbox.list() == []
        denied = [e for e in runtime.audit.query(plugin=PLUGIN, limit=100) if e.kind == "deny"]
        assert len(denied) >= 5

    _run(tmp_path, _install(tmp_path, receiver), scenario, net=NetOptions(resolver=resolver))
    assert receiver.received == []


def test_the_same_idempotency_key_is_one_delivery(tmp_path: Path, receiver: Receiver) -> None:
    ids: list[str] = []

    async def scenario(runtime: Supervisor) -> None:
        for _ in range(2):
            args = [receiver.url(), {"a": 1}, None, "order-17"]
            ids.append(await runtime.run_command(PLUGIN, "w.deliver", args))
        assert await _settled(runtime, ids[0]) == "done"

    _run(tmp_path, _install(tmp_path, receiver), scenario)
    assert ids[0] == ids[1]
    [request] = receiver.received
    assert request["headers"]["idempotency-key"] == "order-17"


def test_past_the_rate_limit_deliveries_wait_and_do_not_fail(
    tmp_path: Path, receiver: Receiver
) -> None:
    options = WebhookOptions(
        backoff=FAST.backoff, poll_s=0.05, host_rates={"127.0.0.1": (10.0, 2.0)}
    )
    timing: dict[str, float] = {}

    async def scenario(runtime: Supervisor) -> None:
        started = time.monotonic()
        ids = await asyncio.gather(
            *(runtime.run_command(PLUGIN, "w.deliver", [receiver.url(), i]) for i in range(6))
        )
        for delivery_id in ids:
            assert await _settled(runtime, delivery_id) == "done"
            assert runtime.outbox.get(delivery_id).attempts == 1
        timing["elapsed"] = time.monotonic() - started

    _run(tmp_path, _install(tmp_path, receiver), scenario, webhooks=options)
    assert len(receiver.received) == 6
    assert timing["elapsed"] >= 0.35  # 2 at once, then 4 more at 10/s


def test_uninstall_purge_forgets_deliveries_and_dead_letters(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses[:] = [404]

    async def scenario(runtime: Supervisor) -> None:
        delivery_id = await runtime.run_command(PLUGIN, "w.deliver", [receiver.url(), 1])
        assert await _settled(runtime, delivery_id) == "dead"
        await runtime.remove(PLUGIN, purge_data=True)
        assert runtime.outbox.list(plugin=PLUGIN) == []

    _run(tmp_path, _install(tmp_path, receiver), scenario)


CHILD = """
import asyncio, sys
from pathlib import Path
from plugport.runtime.supervisor import PluginInstall, Supervisor
from plugport.manifest import load_manifest
from tests.runtime._supervised import config_for
from tests.runtime.test_webhooks import FAST

root, code, endpoint, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]

async def main():
    manifest = load_manifest(code / "plugport.toml")
    install = PluginInstall(manifest, code, local_endpoints=(endpoint,))
    async with Supervisor(config_for(root, webhooks=FAST)) as runtime:
        runtime.add(install)
        await runtime.start()
        delivery_id = await runtime.run_command("acme.hooks", "w.deliver", [url, {"k": 9}])
        print(delivery_id, flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_delivery_survives_kill_9_of_the_host(tmp_path: Path, receiver: Receiver) -> None:
    install = _install(tmp_path, receiver)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    receiver.hang.set()  # the first attempt never gets its answer: the host dies mid-send
    child = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(tmp_path),
            str(install.code_dir),
            receiver.endpoint,
            receiver.url(),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        delivery_id = child.stdout.readline().decode().strip()
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.received, "the child never sent"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    outbox = SqliteOutbox(tmp_path / "state" / "outbox.sqlite")
    assert outbox.get(delivery_id).state == "sending"  # as the dead host left it
    outbox.close()
    receiver.hang.clear()
    found: dict[str, Any] = {}

    async def scenario(runtime: Supervisor) -> None:
        assert await _settled(runtime, delivery_id) == "done"
        found["row"] = runtime.outbox.get(delivery_id)

    _run(tmp_path, install, scenario)
    assert found["row"].state == "done"
    assert [json.loads(r["body"]) for r in receiver.received] == [{"k": 9}, {"k": 9}]
    assert {r["headers"]["x-plugport-delivery"] for r in receiver.received} == {delivery_id}


def test_the_fake_records_sends_and_fails_targets_with_the_real_checks(tmp_path: Path) -> None:
    from plugport.testing._runner import Runner
    from plugport.testing._world import World
    from tests.testing._plugins import write_plugin as write_kit_plugin

    runner = Runner()
    world = World(runner, tmp_path / "home", "strict")
    try:
        handle = world.load(write_kit_plugin(tmp_path / "kit", PLUGIN, BODY, MANIFEST))
        handle.secrets.set("hook", KEY)
        first = handle.command("w.deliver", "https://hooks.example.com/in/a", {"x": 1}, "hook")
        handle.webhooks.settle()
        [sent] = handle.webhooks.sent
        assert sent.id == first
        assert sent.payload == {"x": 1}
        assert sent.headers["x-plugport-signature"].startswith("sha256=")
        assert handle.webhooks.state(first).state == "done"
        handle.webhooks.fail("https://hooks.example.com/in/b", 410)
        second = handle.command("w.deliver", "https://hooks.example.com/in/b", [2])
        handle.webhooks.settle()
        assert handle.webhooks.state(second).state == "dead"
        with pytest.raises(PermissionDeniedError, match=r"webhooks\.deliver"):
            handle.command("w.deliver", "https://evil.example.com/in/a", 1)
        assert len(handle.webhooks.sent) == 2
    finally:
        world.close()
        runner.close()
