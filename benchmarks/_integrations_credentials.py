"""``credential_injection_overhead_us``: what naming a credential adds to a ``net.fetch``.

The same fetch to a local HTTP server is made through the host's ``net.fetch`` handler with and
without ``credential=``, interleaved so both see the same machine; the overhead is the
difference of the medians. With a credential the host looks the value up in the host's secrets
store, checks the URL against the credential's targets, puts it on the request, takes it out of
the answer and writes the audit row. The plugin's channel round trip is the same either way,
so it is left out (``benchmarks/runtime.py`` measures it).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plugport.host.secrets.store import EncryptedSecretStore
from plugport.manifest import Manifest
from plugport.runtime.capabilities._record import Grants, NetOptions
from plugport.runtime.capabilities._resolver import StaticResolver
from plugport.runtime.capabilities._secret_source import SecretSource
from plugport.runtime.capabilities.network import NetCalls
from plugport.runtime.supervisor import Supervisor, SupervisorConfig

TARGET_US = 200.0
TOKEN = b"bench-token-0123456789abcdef"

# A tiny HTTP/1.1 server in its own process: one short answer, connection closed after it.
_SERVER = r"""
import asyncio, sys

BODY = b'{"ok": true}'
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
          + str(len(BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + BODY)

async def serve(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(ANSWER)
    await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def _manifest(port: int) -> Manifest:
    return Manifest.model_validate(
        {
            "name": "bench.creds",
            "version": "1.0.0",
            "entry": "main:Main",
            "credentials": {"api": {"kind": "bearer", "hosts": [f"api.bench.test:{port}"]}},
        }
    )


async def _samples(calls: NetCalls, url: str, count: int) -> tuple[list[float], list[float]]:
    plain: list[float] = []
    named: list[float] = []
    for i in range(count):
        # Alternate which goes first, so neither always follows the other's connection close.
        order = (None, "api") if i % 2 == 0 else ("api", None)
        for credential in order:
            start = time.perf_counter()
            answer = await calls.fetch(url, credential=credential)
            took = (time.perf_counter() - start) * 1e6
            if answer["status"] != 200:
                raise RuntimeError(f"the local server answered {answer['status']}")
            (plain if credential is None else named).append(took)
    return plain, named


def measure(
    root: Path, *, quick: bool, secrets: Callable[[Path], SecretSource] | None = None
) -> dict[str, Any]:
    """The ``targets`` entry; ``secrets`` builds the secrets source under ``root`` (default:
    the host's own encrypted store, as ``PluginHost`` makes it)."""
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline()) if server.stdout is not None else 0
        source = (secrets or EncryptedSecretStore)(root / "home")
        source_name = type(source).__name__
        setter = getattr(source, "set")  # noqa: B009 - every store sets; the Protocol only reads
        setter("bench.creds", "api", TOKEN)
        runtime = Supervisor(
            SupervisorConfig(state_dir=root / "runtime", sandbox="best-effort"),
        )
        runtime.services.secrets = source
        runtime.services.net = NetOptions(
            resolver=StaticResolver({"api.bench.test": ["127.0.0.1"]}), timeout_ms=5_000
        )
        grants = Grants.from_manifest(_manifest(port), local_endpoints=[f"api.bench.test:{port}"])
        calls = NetCalls(grants, runtime.services)
        url = f"http://api.bench.test:{port}/rest/x"
        count = 200 if quick else 3000

        async def run() -> tuple[list[float], list[float]]:
            await _samples(calls, url, 50)  # warm up: imports, the first connections
            return await _samples(calls, url, count)

        plain, named = asyncio.run(run())
        runtime.db.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    without_us = statistics.median(plain)
    with_us = statistics.median(named)
    overhead = round(with_us - without_us, 1)
    return {
        "credential_injection_overhead_us": {
            "value": overhead,
            "target": TARGET_US,
            "met": overhead <= TARGET_US,
            "fetch_without_credential_p50_us": round(without_us, 1),
            "fetch_with_credential_p50_us": round(with_us, 1),
            "samples_each": count,
            "secret_source": source_name,
        }
    }
