"""Integrations benchmarks (issue 17): one measure function per target, each returning its
``targets`` entry (``value``, ``target``, ``met`` and what explains the number). Other parts of
the integrations platform add theirs to :data:`MEASURES`.

- ``credential_injection_overhead_us``: ``_integrations_credentials.py`` (the same local fetch
  through the host's ``net.fetch`` handler with and without ``credential=``). Target <= 200 us.
- ``webhook_deliveries_per_s``: ``_integrations_outbound.py`` (``api.webhooks.deliver`` in a
  plugin to a 2xx at a local receiver, each persisted first). Target >= 500.
- ``webhook_ingest_p95_ms``: a signed GitHub-style delivery POSTed with a real HTTP client
  (keep-alive) to the real host service on uvicorn at 127.0.0.1, verified, committed to the
  workspace's inbox and answered 202; the plugin's handler runs in the background meanwhile
  (as in production). Target <= 10 ms.

Run: ``.venv/bin/python benchmarks/integrations.py --json`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from _common import percentiles
from _integrations_credentials import measure as credential_injection
from _integrations_outbound import webhook_deliveries

from plugport.authoring import archive_facts, pack_plugin
from plugport.host import PluginHost
from plugport.host.service import HostServiceSettings, create_host_service_app
from plugport.signing import generate_private_key, public_key_pem, sign
from plugport.testing import sign_webhook

TARGET_WEBHOOK_INGEST_P95_MS = 10.0
PLUGIN = "bench.hooks"
SECRET = b"benchmark-webhook-secret"
CODE = """\
from plugport.sdk import Plugin, webhook


class Main(Plugin):
    @webhook("push")
    def push(self, event):
        return len(event.body)
"""
MANIFEST = f"""\
name = "{PLUGIN}"
version = "1.0.0"
entry = "main:Main"

[webhooks.push]
verifier = "github"
secret = "github_secret"
"""


@contextlib.contextmanager
def _serving(app: Any) -> Iterator[str]:
    sock = socket.socket()
    # Accepted connections inherit TCP_NODELAY (Linux): without it the answer's second small
    # write waits for the client's delayed ACK, 40 ms, and that is all one would measure.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


def _install(home: Path, root: Path) -> None:
    source = root / "src"
    source.mkdir()
    (source / "main.py").write_text(CODE)
    (source / "plugport.toml").write_text(MANIFEST)
    key = generate_private_key()
    archive = pack_plugin(source, root / "dist").result.path
    Path(f"{archive}.sig").write_bytes(sign(key, archive_facts(archive)))
    public = root / "bench.pub"
    public.write_text(public_key_pem(key.public_key()))

    async def main() -> None:
        host = PluginHost(app="bench", app_version="1", home=home, consent=lambda r: True)
        async with host:
            await host.install(str(archive), key=public)

    asyncio.run(main())


def webhook_ingest(quick: bool) -> dict[str, Any]:
    samples = 60 if quick else 600
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = HostServiceSettings(data_dir=root / "service", app="bench", telemetry=False)
        app = create_host_service_app(settings)
        service = app.state.host_service
        service.create_workspace("bench", actor="benchmark")
        _install(settings.data_dir / "workspaces" / "bench", root)
        # TCP_NODELAY on the client too, as senders' HTTP clients set it.
        nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with _serving(app) as url, httpx.Client(base_url=url, transport=nodelay) as client:
            workspace = service.workspace("bench")
            body = json.dumps({"ref": "refs/heads/main", "commits": [{"id": "x" * 40}] * 5})
            path = f"/hooks/bench/{PLUGIN}/push"
            first = client.post(path, content=body)  # starts the workspace
            if first.status_code != 503:  # its secret is not set yet
                raise RuntimeError(f"expected 503 before the secret is set: {first.text}")
            workspace.host.supervisor.services.secrets.set(PLUGIN, "github_secret", SECRET)
            timings = []
            for n in range(samples + 10):
                headers = sign_webhook("github", SECRET, body, delivery_id=f"d-{n}")
                started = time.perf_counter()
                answer = client.post(path, content=body, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 202:
                    raise RuntimeError(f"delivery {n} not accepted: {answer.text}")
                if n >= 10:  # the first few warm the connection and the manifest cache
                    timings.append(elapsed)
            deadline = time.monotonic() + 60
            while workspace.inbox.next_due() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            states = [d.state for d in workspace.inbox.list(PLUGIN, limit=samples + 10)]
    stats = percentiles(timings, 2, suffix="_ms")
    return {
        "value": stats["p95_ms"],
        "target": TARGET_WEBHOOK_INGEST_P95_MS,
        "met": stats["p95_ms"] <= TARGET_WEBHOOK_INGEST_P95_MS,
        "samples": len(timings),
        **stats,
        "handled_after_run": states.count("done"),
        "body_bytes": len(body),
    }


def injection_overhead(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        entry = credential_injection(Path(tmp), quick=quick)
    return dict(entry["credential_injection_overhead_us"])


def deliveries(quick: bool) -> dict[str, Any]:
    return dict(webhook_deliveries(300 if quick else 2000)["webhook_deliveries_per_s"])


MEASURES: dict[str, Callable[[bool], dict[str, Any]]] = {
    "webhook_ingest_p95_ms": webhook_ingest,
    "credential_injection_overhead_us": injection_overhead,
    "webhook_deliveries_per_s": deliveries,
}
"""Target name -> its measure (``quick`` -> the target's entry)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON on one line")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--only", choices=sorted(MEASURES), action="append", help="these only")
    args = parser.parse_args()
    chosen = args.only or list(MEASURES)
    result = {"targets": {name: MEASURES[name](args.quick) for name in chosen}}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
