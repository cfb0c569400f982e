"""Registry nodes behind a load balancer: does a second node add throughput, does anything
fail, and how soon does one node see what another changed? Prints one JSON object with a
``targets`` block.

The cluster is the one ``make cluster`` starts (``scripts/_cluster.py``): ``plugport serve``
nodes on PostgreSQL (a database of its own, dropped afterwards), moto's S3 server and Redis,
one index key, behind haproxy (round robin, ``/healthz`` checks); the rate limit is raised so
the load is not refused. It is seeded with signed plugins, published through the balancer.

- Throughput: ``--clients`` keep-alive connections send a mix of search, plugin detail and
  archive download (the archive streamed from S3 by the node) through the balancer for
  ``--duration-s``, first with one node serving (the other in maintenance on haproxy's admin
  socket, as an operator draining it would), then with two; alternated ``--rounds`` times.
  ``two_node_scaling`` is the 2-node rate over the 1-node rate (target 1.6 from 8 cores,
  1.0 below: :data:`SCALING_TARGETS`). The load
  generator is a small raw HTTP/1.1 client (httpx would cost several times the CPU per
  request) but it still shares the machine's cores with the nodes, haproxy, moto and
  PostgreSQL: the CPU each used per second of load is reported beside the rates, so a ratio
  held down by a machine with too few cores shows as such.
- ``errors``: answers other than 2xx/3xx, and dropped connections, in the whole run (0).
- ``cross_node_visibility_ms``: publish, approve (a version held for review) and yank on node
  1, then poll node 2 (every 5 ms) until its API shows the change (search finds the plugin,
  the version is yanked); the slowest of all tries (target 1000).

Run: ``.venv/bin/python benchmarks/cluster.py --json`` (``--quick`` for a smoke run of a few
seconds). PostgreSQL: ``--postgres-url`` or ``PLUGPORT_TEST_POSTGRES_URL``; Redis:
``--redis-url`` or ``PLUGPORT_TEST_REDIS_URL`` (its database 14 is used, see
:data:`REDIS_DB`). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
from _cluster import (  # the shared start/stop logic, beside scripts/cluster.py
    DEFAULT_POSTGRES_URL,
    DEFAULT_REDIS_URL,
    Cluster,
    ClusterError,
    Plan,
    Publisher,
    running,
)

SCALING_TARGETS = ((8, 1.6), (0, 1.0))
"""The 2-node over 1-node rate wanted, by the cores the machine has: with 8 or more, 1.6;
with fewer, where both nodes, PostgreSQL, Redis, moto, haproxy and the load generator share
them, no loss (1.0): a second node can only add what cores are left to run it."""


def scaling_target(cores: int) -> float:
    return next(target for least, target in SCALING_TARGETS if cores >= least)


TARGET_ERRORS = 0
TARGET_VISIBILITY_MS = 1000.0
RATE_LIMIT_PER_MINUTE = 100_000_000
REDIS_DB = 14
"""The benchmark's rate-limit counters go to a Redis database of their own: counters are keyed
by client address, not by registry, so thousands of requests from 127.0.0.1 in db 0 would
spend the budget of every other registry (and test) on this machine counting there."""
POLL_S = 0.005
VISIBILITY_TIMEOUT_S = 10.0
MIX = {"search": 50, "detail": 30, "download": 20}
WORDS = ("sync", "export", "chart", "alert", "backup", "deploy", "ticket", "invoice", "notes")


@dataclass(frozen=True)
class Settings:
    duration_s: float
    warmup_s: float
    rounds: int
    clients: int
    plugins: int
    visibility_tries: int


FULL = Settings(duration_s=10, warmup_s=2, rounds=2, clients=16, plugins=20, visibility_tries=5)
QUICK = Settings(duration_s=2, warmup_s=0.5, rounds=1, clients=8, plugins=3, visibility_tries=1)


# --- a small HTTP/1.1 client --------------------------------------------------------------------


class HttpError(Exception):
    pass


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> int:
    if "content-length" in headers:
        size = int(headers["content-length"])
        await reader.readexactly(size)
        return size
    if headers.get("transfer-encoding", "").lower() == "chunked":
        total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0], 16)
            await reader.readexactly(size + 2)
            total += size
            if size == 0:
                return total
    raise HttpError("an answer without a length")


class Connection:
    """One keep-alive connection; ``get`` returns the status (the body is read and dropped)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            await _read_body(reader, headers)
        except (asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            await self.close()
            raise HttpError(str(exc) or type(exc).__name__) from exc
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:  # already reset by the peer: nothing left to close
                return


# --- load ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        bad = sum(n for status, n in self.statuses.items() if not 200 <= status < 400)
        return bad + sum(self.dropped.values())


def _path(kind: str, rng: random.Random, plugins: list[str]) -> str:
    name = rng.choice(plugins)
    if kind == "search":
        query = {"q": rng.choice(WORDS), "sort": rng.choice(("relevance", "downloads", "name"))}
        return f"/api/v1/plugins?{urlencode(query)}"
    if kind == "detail":
        return f"/api/v1/plugins/{name}"
    return f"/api/v1/plugins/{name}/versions/1.0.0/download"


async def _client(
    url: str, seed: int, plugins: list[str], tally: Tally | None, stop_at: float
) -> None:
    rng = random.Random(seed)  # noqa: S311 a reproducible mix, not secrets
    kinds, weights = list(MIX), list(MIX.values())
    where = urlsplit(url)
    connection = Connection(where.hostname or "127.0.0.1", where.port or 80)
    try:
        while time.monotonic() < stop_at:
            kind = rng.choices(kinds, weights)[0]
            try:
                status = await connection.get(_path(kind, rng, plugins))
            except (HttpError, OSError) as error:
                if tally is not None:
                    tally.dropped[f"{kind}: {type(error).__name__}"] += 1
                await connection.close()
                continue
            if tally is not None:
                tally.by_kind[kind] += 1
                tally.statuses[status] += 1
    finally:
        await connection.close()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes(cluster: Cluster) -> dict[str, list[int]]:
    found = {node.name: [node.process.pid] for node in cluster.nodes}
    found["load generator"] = [os.getpid()]
    for name, pid in (("haproxy", cluster.haproxy_pid), ("s3 (moto)", cluster.s3_pid)):
        if pid:
            found[name] = [pid]
    return found


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            found[pid] = _cpu_s(pid)
        except OSError:  # gone (a pooled connection closed)
            continue
    return found


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between the two readings by the processes alive at both."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


async def _phase(
    cluster: Cluster, nodes: int, settings: Settings, plugins: list[str], seed: int
) -> tuple[dict[str, Any], Tally]:
    cluster.serve_from(nodes)
    url = cluster.balancer_url
    warm_until = time.monotonic() + settings.warmup_s
    await asyncio.gather(
        *(_client(url, seed + i, plugins, None, warm_until) for i in range(settings.clients))
    )
    tally = Tally()
    pids = _processes(cluster)
    cpu_before = {name: _cpu_by_pid(group) for name, group in pids.items()}
    started = time.monotonic()
    stop_at = started + settings.duration_s
    await asyncio.gather(
        *(_client(url, seed + i, plugins, tally, stop_at) for i in range(settings.clients))
    )
    elapsed = time.monotonic() - started
    cpu = {
        name: round(_cpu_used(cpu_before[name], _cpu_by_pid(group)) / elapsed, 2)
        for name, group in pids.items()
    }
    return {
        "nodes": nodes,
        "requests": tally.requests,
        "requests_per_s": round(tally.requests / elapsed, 1),
        "by_kind": dict(sorted(tally.by_kind.items())),
        "errors": tally.errors,
        "cpu_cores_used": cpu,
    }, tally


# --- visibility across nodes ----------------------------------------------------------------------


def _until(check: Any, what: str) -> float:
    """Milliseconds until ``check()`` is true (polled every POLL_S)."""
    started = time.perf_counter()
    deadline = time.monotonic() + VISIBILITY_TIMEOUT_S
    while not check():
        if time.monotonic() > deadline:
            raise ClusterError(f"node 2 never showed {what} ({VISIBILITY_TIMEOUT_S:.0f} s)")
        time.sleep(POLL_S)
    return (time.perf_counter() - started) * 1000


def _visibility(
    cluster: Cluster, trusted: Publisher, held: Publisher, tries: int, tally: Tally
) -> dict[str, list[float]]:
    a, b = cluster.nodes[0].url, cluster.nodes[1].url
    client = httpx.Client(base_url=b, timeout=10)
    admin = httpx.Client(
        base_url=a, timeout=30, headers={"Authorization": f"Bearer {cluster.admin_token}"}
    )

    def get(path: str, **params: Any) -> httpx.Response:
        response = client.get(path, params=params)
        tally.statuses[response.status_code] += 1
        return response

    def found(name: str, word: str) -> bool:
        response = get("/api/v1/plugins", q=word)
        return response.is_success and name in [i["name"] for i in response.json()["items"]]

    times: dict[str, list[float]] = {"publish": [], "approve": [], "yank": []}
    try:
        for turn in range(tries):
            word = f"zq{turn}x{random.randrange(10**6)}"  # noqa: S311 a unique word, not a secret
            short = f"seen-{turn}"
            trusted.publish(a, short, "1.0.0", f"Visible everywhere {word}.")
            name = f"{trusted.namespace}.{short}"
            times["publish"].append(
                _until(lambda name=name, word=word: found(name, word), f"{name} in search")
            )

            version = f"{name}/versions/1.0.0"
            response = httpx.post(
                f"{a}/api/v1/plugins/{version}/yank",
                json={"reason": "benchmark"},
                headers={"Authorization": f"Bearer {trusted.token}"},
                timeout=30,
            )
            tally.statuses[response.status_code] += 1
            times["yank"].append(
                _until(
                    lambda version=version: get(f"/api/v1/plugins/{version}").json()["yanked"],
                    f"{name} 1.0.0 yanked",
                )
            )

            held_word = f"zh{turn}x{random.randrange(10**6)}"  # noqa: S311 not a secret
            held.publish(a, short, "1.0.0", f"Held for review {held_word}.")
            held_name = f"{held.namespace}.{short}"
            response = admin.post(
                f"/api/v1/review/{held_name}/1.0.0/approve", json={"reason": "benchmark"}
            )
            tally.statuses[response.status_code] += 1
            times["approve"].append(
                _until(
                    lambda name=held_name, word=held_word: found(name, word),
                    f"{held_name} approved in search",
                )
            )
    finally:
        client.close()
        admin.close()
    return {kind: [round(ms, 1) for ms in values] for kind, values in times.items()}


# --- the run ------------------------------------------------------------------------------------


def _seed(publisher: Publisher, cluster: Cluster, count: int) -> list[str]:
    rng = random.Random(11)  # noqa: S311 reproducible descriptions, not secrets
    names = []
    for index in range(count):
        words = " ".join(rng.sample(WORDS, 3))
        short = f"plugin-{index}"
        publisher.publish(cluster.balancer_url, short, "1.0.0", f"Cluster plugin: {words}.")
        names.append(f"{publisher.namespace}.{short}")
    return names


async def _throughput(
    cluster: Cluster, settings: Settings, plugins: list[str]
) -> tuple[list[dict[str, Any]], Tally]:
    phases, total = [], Tally()
    for round_ in range(settings.rounds):
        for nodes in (1, 2):
            phase, tally = await _phase(cluster, nodes, settings, plugins, 100 * round_)
            phases.append(phase)
            total.statuses.update(tally.statuses)
            total.dropped.update(tally.dropped)
    cluster.serve_from(len(cluster.nodes))
    return phases, total


def run(settings: Settings, postgres_url: str, redis_url: str) -> dict[str, Any]:
    plan = Plan(
        nodes=2,
        port=0,
        node_port=0,
        postgres_url=postgres_url,
        database=f"plugport_cluster_bench_{os.getpid()}",
        fresh_database=True,
        drop_database=True,
        redis_url=urlsplit(redis_url)._replace(path=f"/{REDIS_DB}").geturl(),
        start_services=False,
        node_env={"PLUGPORT_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE)},
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="plugport-cluster-bench-") as scratch:
        work = Path(scratch)
        with running(plan) as cluster:
            trusted = Publisher(cluster, work / "bench", "bench", trusted=True)
            held = Publisher(cluster, work / "held", "held", trusted=False)
            plugins = _seed(trusted, cluster, settings.plugins)
            phases, tally = asyncio.run(_throughput(cluster, settings, plugins))
            visible = _visibility(cluster, trusted, held, settings.visibility_tries, tally)
    one = [p["requests_per_s"] for p in phases if p["nodes"] == 1]
    two = [p["requests_per_s"] for p in phases if p["nodes"] == 2]
    one_rate, two_rate = sum(one) / len(one), sum(two) / len(two)
    scaling = round(two_rate / one_rate, 2) if one_rate else 0.0
    cores = os.cpu_count() or 1
    wanted = scaling_target(cores)
    slowest = max(ms for values in visible.values() for ms in values)
    errors = tally.errors
    return {
        "nodes": 2,
        "clients": settings.clients,
        "duration_s_per_phase": settings.duration_s,
        "seeded_plugins": settings.plugins,
        "mix": MIX,
        "cpu_count": os.cpu_count(),
        "throughput": {
            "one_node_requests_per_s": round(one_rate, 1),
            "two_nodes_requests_per_s": round(two_rate, 1),
            "phases": phases,
        },
        "statuses": {str(s): n for s, n in sorted(tally.statuses.items())},
        "dropped": dict(sorted(tally.dropped.items())),
        "cross_node_visibility_ms": visible,
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "note": (
            f"{os.cpu_count()} CPU cores shared by the load generator, haproxy, the nodes, moto "
            "and PostgreSQL (and whatever else runs here: see load_average.before): the second "
            "node can only add throughput with cores to run on; cpu_cores_used shows where "
            "they went in each phase (PostgreSQL's backends come and go with the nodes' "
            "connection pools and are not counted)"
        ),
        "targets": {
            "two_node_scaling": {
                "value": scaling,
                "target": wanted,
                "met": scaling >= wanted,
                "cores": cores,
            },
            "errors": {"value": errors, "target": TARGET_ERRORS, "met": errors <= TARGET_ERRORS},
            "cross_node_visibility_ms": {
                "value": slowest,
                "target": TARGET_VISIBILITY_MS,
                "met": slowest <= TARGET_VISIBILITY_MS,
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--duration-s", type=float, help="seconds of load per phase (10)")
    parser.add_argument("--clients", type=int, help="concurrent keep-alive connections (16)")
    parser.add_argument("--rounds", type=int, help="1-node/2-node alternations (2)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PLUGPORT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="the PostgreSQL server to create the benchmark's database on",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("PLUGPORT_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    )
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    for option, value, least in (
        ("--duration-s", args.duration_s, 0.1),
        ("--clients", args.clients, 1),
        ("--rounds", args.rounds, 1),
    ):
        if value is not None and value < least:
            parser.error(f"{option} must be at least {least}")
    if args.duration_s is not None:
        settings = replace(settings, duration_s=args.duration_s)
    if args.clients is not None:
        settings = replace(settings, clients=args.clients)
    if args.rounds is not None:
        settings = replace(settings, rounds=args.rounds)
    try:
        result = run(settings, args.postgres_url, args.redis_url)
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, target in result["targets"].items():
        print(f"{name}: {target['value']} (target {target['target']}, met: {target['met']})")
    print(json.dumps(result["throughput"]["phases"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
