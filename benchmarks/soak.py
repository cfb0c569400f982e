"""A soak test of the registry: a real server under a steady mix of reads and publishes for a
while, watching for server errors, dropped connections and memory that keeps growing. Prints
one JSON object with its targets and whether they are met.

A real registry (``plugport serve``, SQLite, a temp data dir, in a subprocess on 127.0.0.1,
its rate limit raised with ``PLUGPORT_RATE_LIMIT_PER_MINUTE`` so the load is not refused) is
seeded with signed plugins in a trusted namespace. Then ``--clients`` concurrent keep-alive
clients run a weighted mix for ``--duration-s``: search (words from the seeded descriptions,
several sorts and pages), plugin detail, version list, resolve, archive download, and the
signed index (half of the time revalidated with ``If-None-Match``); meanwhile one publisher
uploads a new signed version (packed and signed like ``plugport publish`` does) every
``--publish-every-s``, each one changing the signed index under the readers. The server's RSS
is sampled from ``/proc`` throughout.

Reported: requests/s, p50/p95/p99 latency overall and per kind, responses by status, errors
by status, dropped connections (the client's transport errors), publishes, RSS samples.
Targets: ``server_errors`` (5xx + dropped connections) = 0, and ``rss_growth_last_half_mb``
(the server's RSS at the end minus at half time) <= 5.

Run: ``.venv/bin/python benchmarks/soak.py --json`` (5 minutes, 32 clients),
``--quick`` for a smoke run of a few seconds; ``--duration-s``, ``--clients`` to choose.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from _common import Server, SigningNamespace, percentiles, registry

NAMESPACE = "soak"
TARGET_SERVER_ERRORS = 0
TARGET_RSS_GROWTH_MB = 5.0
RATE_LIMIT_PER_MINUTE = 100_000_000
WORDS = (
    "sync", "export", "chart", "alert", "backup", "deploy", "review", "ticket", "calendar",
    "invoice", "metrics", "webhook", "translate", "weather", "payment", "notes", "markdown",
    "search", "dashboard", "reminder",
)  # fmt: skip
SORTS = ("relevance", "downloads", "rating", "recent", "trending", "name")
# Relative weights of the read mix (publishes run beside it, on their own clock).
MIX = {
    "search": 30,
    "detail": 20,
    "versions": 10,
    "resolve": 10,
    "download": 15,
    "index": 15,
}


@dataclass(frozen=True)
class Plan:
    duration_s: float
    clients: int
    plugins: int
    publish_every_s: float
    rss_every_s: float


FULL = Plan(duration_s=300, clients=32, plugins=40, publish_every_s=3.0, rss_every_s=5.0)
QUICK = Plan(duration_s=4, clients=4, plugins=4, publish_every_s=1.0, rss_every_s=0.5)


# --- the server -------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """The process's resident set size in MiB, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for process {pid}")


# --- publishing -------------------------------------------------------------------------------


class Publisher:
    """A trusted namespace with a registered key and a publish token; packs, signs and uploads
    small plugins (a hook and a few KB of data), the way ``plugport publish`` does."""

    def __init__(self, server: Server, root: Path) -> None:
        self.namespace = SigningNamespace(server, root, NAMESPACE, "soak")
        self.rng = random.Random(7)  # noqa: S311 a reproducible mix, not secrets

    def build(self, name: str, version: str) -> tuple[bytes, bytes]:
        """The archive and its signature for ``name`` ``version``."""
        words = " ".join(self.rng.sample(WORDS, 4))
        archive, signature = self.namespace.build(
            name,
            version,
            description=f"Soak plugin: {words}.",
            data_bytes=4096,
            tags=[words.split()[0]],
        )
        return archive.read_bytes(), signature.read_bytes()

    async def publish(self, client: httpx.AsyncClient, name: str, version: str) -> httpx.Response:
        archive, signature = await asyncio.to_thread(self.build, name, version)
        files: dict[str, tuple[str, bytes] | tuple[str, bytes, str]] = {
            "archive": (f"{name}-{version}.plugport", archive, "application/zip"),
            "signature": (f"{name}-{version}.sig", signature),
        }
        return await client.post(
            f"/api/v1/plugins/{name}/versions",
            files=files,
            headers={"Authorization": f"Bearer {self.namespace.token}"},
        )


# --- the load ---------------------------------------------------------------------------------


class Tally:
    """Every answer the clients got: latency by kind, statuses, dropped connections."""

    def __init__(self) -> None:
        self.latency_ms: dict[str, list[float]] = defaultdict(list)
        self.statuses: Counter[int] = Counter()
        self.by_kind_status: dict[str, Counter[int]] = defaultdict(Counter)
        self.dropped: Counter[str] = Counter()
        self.examples: dict[int, str] = {}

    def answered(self, kind: str, response: httpx.Response, elapsed_ms: float) -> None:
        self.latency_ms[kind].append(elapsed_ms)
        self.statuses[response.status_code] += 1
        self.by_kind_status[kind][response.status_code] += 1
        if response.status_code >= 400 and response.status_code not in self.examples:
            self.examples[response.status_code] = f"{kind}: {response.text[:200]}"

    def failed(self, kind: str, error: httpx.TransportError) -> None:
        self.dropped[f"{kind}: {type(error).__name__}"] += 1


@dataclass
class Catalogue:
    """What the clients pick from; the publisher adds to it as it goes."""

    versions: dict[str, list[str]]
    index_etag: str | None = None

    def pick(self, rng: random.Random) -> tuple[str, str]:
        name = rng.choice(list(self.versions))
        return name, rng.choice(self.versions[name])


def _request(kind: str, rng: random.Random, catalogue: Catalogue) -> tuple[str, dict[str, Any]]:
    name, version = catalogue.pick(rng)
    if kind == "search":
        params: dict[str, Any] = {"sort": rng.choice(SORTS), "page": rng.randint(1, 2)}
        if rng.random() < 0.8:
            params["q"] = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
        return "/api/v1/plugins", {"params": params}
    if kind == "detail":
        return f"/api/v1/plugins/{name}", {}
    if kind == "versions":
        return f"/api/v1/plugins/{name}/versions", {}
    if kind == "resolve":
        return f"/api/v1/plugins/{name}/resolve", {}
    if kind == "download":
        return f"/api/v1/plugins/{name}/versions/{version}/download", {}
    headers = {}
    if catalogue.index_etag is not None and rng.random() < 0.5:
        headers["If-None-Match"] = catalogue.index_etag
    return "/api/v1/index", {"headers": headers}


async def _client(url: str, seed: int, catalogue: Catalogue, tally: Tally, stop_at: float) -> None:
    rng = random.Random(seed)  # noqa: S311 a reproducible mix, not secrets
    kinds, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < stop_at:
            kind = rng.choices(kinds, weights)[0]
            path, options = _request(kind, rng, catalogue)
            started = time.perf_counter()
            try:
                response = await client.get(path, **options)
            except httpx.TransportError as error:
                tally.failed(kind, error)
                continue
            tally.answered(kind, response, (time.perf_counter() - started) * 1000)
            if kind == "index" and response.status_code == 200:
                catalogue.index_etag = response.headers.get("etag")


async def _publisher(
    url: str,
    *,
    publisher: Publisher,
    catalogue: Catalogue,
    tally: Tally,
    every_s: float,
    stop_at: float,
) -> None:
    turn = 0
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        while time.monotonic() + every_s < stop_at:
            began = time.monotonic()
            name = f"{NAMESPACE}.plugin-{turn % len(catalogue.versions)}"
            version = f"1.{1 + turn // len(catalogue.versions)}.0"
            try:
                response = await publisher.publish(client, name, version)
            except httpx.TransportError as error:
                tally.failed("publish", error)
            else:
                tally.answered("publish", response, (time.monotonic() - began) * 1000)
                if response.status_code == 201:
                    catalogue.versions[name].append(version)
            turn += 1
            await asyncio.sleep(max(0.0, every_s - (time.monotonic() - began)))


async def _sample_rss(
    pid: int, every_s: float, stop_at: float, started: float
) -> list[list[float]]:
    samples = [[0.0, round(rss_mb(pid), 1)]]
    while time.monotonic() < stop_at:
        await asyncio.sleep(min(every_s, max(0.0, stop_at - time.monotonic())))
        samples.append([round(time.monotonic() - started, 1), round(rss_mb(pid), 1)])
    return samples


async def _run(
    server: Server, publisher: Publisher, plan: Plan, catalogue: Catalogue
) -> dict[str, Any]:
    tally = Tally()
    started = time.monotonic()
    stop_at = started + plan.duration_s
    sampler = asyncio.create_task(_sample_rss(server.pid, plan.rss_every_s, stop_at, started))
    await asyncio.gather(
        *(_client(server.url, seed, catalogue, tally, stop_at) for seed in range(plan.clients)),
        _publisher(
            server.url,
            publisher=publisher,
            catalogue=catalogue,
            tally=tally,
            every_s=plan.publish_every_s,
            stop_at=stop_at,
        ),
    )
    elapsed = time.monotonic() - started
    samples = await sampler
    return _report(plan, tally, samples, elapsed)


def _at(samples: list[list[float]], when: float) -> float:
    """The RSS sample closest to ``when`` seconds into the run."""
    return min(samples, key=lambda sample: abs(sample[0] - when))[1]


def _report(plan: Plan, tally: Tally, samples: list[list[float]], elapsed: float) -> dict[str, Any]:
    reads = [ms for kind, values in tally.latency_ms.items() if kind != "publish" for ms in values]
    requests = sum(tally.statuses.values())
    errors = {str(s): n for s, n in sorted(tally.statuses.items()) if s >= 400}
    server_errors = sum(n for s, n in tally.statuses.items() if s >= 500)
    dropped = sum(tally.dropped.values())
    half = _at(samples, elapsed / 2)
    growth = round(samples[-1][1] - half, 1)
    publishes = tally.by_kind_status.get("publish", Counter())
    return {
        "duration_s": round(elapsed, 1),
        "clients": plan.clients,
        "seeded_plugins": plan.plugins,
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "latency_ms": percentiles(reads, 1) if reads else {},
        "by_kind": {
            kind: {
                "requests": len(values),
                **percentiles(values, 1, suffix="_ms"),
                "statuses": {str(s): n for s, n in sorted(tally.by_kind_status[kind].items())},
            }
            for kind, values in sorted(tally.latency_ms.items())
        },
        "statuses": {str(s): n for s, n in sorted(tally.statuses.items())},
        "errors_by_status": errors,
        "error_examples": {str(s): text for s, text in sorted(tally.examples.items())},
        "dropped_connections": dropped,
        "dropped_by_kind": dict(sorted(tally.dropped.items())),
        "publishes": {"attempted": sum(publishes.values()), "published": publishes.get(201, 0)},
        "rss_mb": {
            "start": samples[0][1],
            "half": half,
            "end": samples[-1][1],
            "max": max(sample[1] for sample in samples),
            "samples": samples,
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "targets": {
            "server_errors": {
                "value": server_errors + dropped,
                "target": TARGET_SERVER_ERRORS,
                "met": server_errors + dropped <= TARGET_SERVER_ERRORS,
            },
            "rss_growth_last_half_mb": {
                "value": growth,
                "target": TARGET_RSS_GROWTH_MB,
                "met": growth <= TARGET_RSS_GROWTH_MB,
            },
        },
    }


def _seed(server: Server, publisher: Publisher, plugins: int) -> Catalogue:
    catalogue = Catalogue({})

    async def seed() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            for index in range(plugins):
                name = f"{NAMESPACE}.plugin-{index}"
                response = await publisher.publish(client, name, "1.0.0")
                if response.status_code != 201 or response.json()["status"] != "published":
                    raise SystemExit(f"seeding {name}: {response.status_code} {response.text}")
                catalogue.versions[name] = ["1.0.0"]

    asyncio.run(seed())
    return catalogue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--duration-s", type=float, help="how long the load runs (300)")
    parser.add_argument("--clients", type=int, help="concurrent keep-alive clients (32)")
    parser.add_argument("--publish-every-s", type=float, help="seconds between two publishes (3)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.duration_s is not None:
        if args.duration_s <= 0:
            parser.error("--duration-s must be more than 0")
        # About 20 RSS samples at least, however short the run.
        every = max(0.5, min(plan.rss_every_s, args.duration_s / 20))
        plan = replace(plan, duration_s=args.duration_s, rss_every_s=every)
    if args.clients is not None:
        if args.clients < 1:
            parser.error("--clients must be at least 1")
        plan = replace(plan, clients=args.clients)
    if args.publish_every_s is not None:
        if args.publish_every_s <= 0:
            parser.error("--publish-every-s must be more than 0")
        plan = replace(plan, publish_every_s=args.publish_every_s)
    with tempfile.TemporaryDirectory(prefix="plugport-soak-") as scratch:
        root = Path(scratch)
        with registry(
            root / "data", {"PLUGPORT_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE)}
        ) as server:
            publisher = Publisher(server, root / "work")
            catalogue = _seed(server, publisher, plan.plugins)
            result = asyncio.run(_run(server, publisher, plan, catalogue))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, target in result["targets"].items():
        print(f"{name}: {target['value']} (target {target['target']}, met: {target['met']})")
    print(f"{result['requests_per_s']} requests/s, latency {result['latency_ms']}")


if __name__ == "__main__":
    main()
