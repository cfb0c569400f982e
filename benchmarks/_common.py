"""Helpers the benchmark scripts share, so every script reports percentiles, runs a real
registry and publishes signed plugins to it the same way."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from plugport import signing
from plugport.authoring import pack_plugin, sign_archive

START_TIMEOUT_S = 30.0

GREETER = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return "{label} says hello to " + name
"""
"""A plugin answering the ``greet`` hook; ``{label}`` becomes ``"<name> <version>"``."""


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of an already sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def percentiles(
    samples: Iterable[float], digits: int = 1, *, suffix: str = "", quantiles: Iterable[str] = ()
) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., "p99": ...}`` (keys take ``suffix``, e.g. ``"_ms"``);
    p50 is the median, the others nearest-rank. ``quantiles`` limits the keys reported."""
    ordered = sorted(samples)
    values = {
        "p50": statistics.median(ordered),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
    }
    wanted = set(quantiles) or set(values)
    return {f"{k}{suffix}": round(v, digits) for k, v in values.items() if k in wanted}


# --- a real registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A running ``plugport serve``: where it answers, an admin token, and the server's pid
    (the leader of its own process group), e.g. to sample its memory."""

    url: str
    admin: str
    pid: int


@contextlib.contextmanager
def cores_loaded() -> Iterator[int]:
    """One busy-looping process per core, for the time of the block: the machine state where
    no idle core waits to run what wakes (the other state latencies are reported in)."""
    count = os.cpu_count() or 1
    spinners = [
        subprocess.Popen([sys.executable, "-S", "-c", "while True: pass"]) for _ in range(count)
    ]
    try:
        time.sleep(0.3)
        yield count
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def registry(data_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """``plugport registry create-admin``, then ``plugport serve`` on 127.0.0.1 in its own
    process group until the block ends. ``env`` is added to both commands' environment (e.g. a
    raised rate limit); the server's output goes to ``registry.log`` beside ``data_dir``."""
    environment = {**os.environ, "NO_COLOR": "1", **(env or {})}
    created = subprocess.run(
        [sys.executable, "-m", "plugport", "registry", "create-admin", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    if created.returncode != 0:
        raise SystemExit(
            f"plugport registry create-admin failed:\n{created.stdout}{created.stderr}"
        )
    found = re.search(r"^ppt_\S+$", created.stdout, re.M)
    if found is None:
        raise SystemExit("plugport registry create-admin printed no token")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir.parent / "registry.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "plugport", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the registry did not start:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield Server(url, found.group(0), process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- signed plugins ---------------------------------------------------------------------------


class SigningNamespace:
    """A trusted namespace on ``server`` with a freshly generated key registered and a publish
    token for it; builds plugins packed and signed the way ``plugport publish`` does. Uploading
    is the caller's (one script does it sync, another async)."""

    def __init__(self, server: Server, root: Path, namespace: str, who: str) -> None:
        self.root = root
        self.namespace = namespace
        root.mkdir(parents=True, exist_ok=True)
        self.key = root / f"{namespace}.key"
        signing.write_keypair(self.key, signing.generate_private_key())
        with httpx.Client(base_url=server.url, timeout=60) as admin:
            headers = {"Authorization": f"Bearer {server.admin}"}
            for path, body in (
                ("/api/v1/namespaces", {"name": namespace, "owner": who, "trusted": True}),
                (f"/api/v1/namespaces/{namespace}/keys",
                 {"public_key_pem": Path(f"{self.key}.pub").read_text()}),
                ("/api/v1/tokens",
                 {"identity": who, "scopes": [f"publish:{namespace}"], "description": who}),
            ):  # fmt: skip
                response = admin.post(path, json=body, headers=headers)
                if not response.is_success:
                    raise SystemExit(
                        f"POST {path}: HTTP {response.status_code}: {response.text[:500]}"
                    )
        self.token: str = response.json()["token"]

    def build(
        self,
        name: str,
        version: str,
        *,
        description: str,
        data_bytes: int,
        code: str = GREETER,
        tags: Sequence[str] = (),
        python: Sequence[str] = (),
        lock: Callable[[Path], object] | None = None,
    ) -> tuple[Path, Path]:
        """The archive and its signature for ``name`` ``version``: ``code`` as ``main.py``
        (``{label}`` filled in) next to ``data_bytes`` of random (incompressible) data; with
        ``python`` dependencies, ``lock(source)`` writes its lock before it is packed."""
        source = self.root / "src" / f"{name}-{version}"
        source.mkdir(parents=True)
        (source / "main.py").write_text(code.replace("{label}", f"{name} {version}"))
        (source / "data.bin").write_bytes(os.urandom(data_bytes))
        listed = ", ".join(f'"{tag}"' for tag in tags)
        (source / "plugport.toml").write_text(
            f'name = "{name}"\nversion = "{version}"\nentry = "main:Main"\n'
            f'display_name = "{name}"\ndescription = "{description}"\n'
            + (f"tags = [{listed}]\n" if tags else "")
            + "[contributes]\nhooks = { greet = 0 }\n"
            + (f"[python]\ndependencies = [{', '.join(map(repr, python))}]\n" if python else "")
        )
        if python and lock is not None:
            lock(source)
        archive = pack_plugin(source, self.root / "dist").result.path
        signature, _, _ = sign_archive(archive, self.key)
        return archive, signature
