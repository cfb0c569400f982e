"""Task queue figures (issue 19), through a real :class:`PluginHost`: the SQLite queue in its
home and the plugin's sandboxed worker. Prints one JSON object with a ``targets`` block.

- ``tasks_per_s_embedded``: submit N durable no-op tasks (each committed to the task store
  and to SqliteHuey's queue before ``submit`` returns, so a ``kill -9`` keeps it; the ``crash``
  block shows it), then drain them at the default concurrency; N / (submit + drain time).
  Target >= 500/s. Next to it, in the same run: a bare ``HueyEngine`` (SqliteHuey) push and
  pop of N ids, and the bare ``Supervisor.run_task`` of the same handler, at the plugin's
  concurrency, with the queue's rate as a share of each.
- ``queue_overhead_p50_ms``: ``submit`` -> the handler starts (the handler's own wall clock),
  one task at a time on an idle queue; also the same for a bare ``run_task``. Target <= 5 ms.
- ``workflow_step_overhead_ms``: a workflow of no-op steps, time per step beyond one task's
  submit -> result. Target <= 10 ms; a chain of no-op steps.
- ``crash`` (and ``crash_exactly_once``): a host process holding 10 running and 100 queued
  tasks is killed with SIGKILL; a new host on the same home runs all 110 once to completion.
- ``distributed``: the same throughput and overhead on PostgreSQL (records and PostgresHuey in
  a fresh database) when ``--postgres-url`` or ``PLUGPORT_TEST_POSTGRES_URL`` is set.

Run: ``.venv/bin/python benchmarks/tasks.py --json`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from _common import percentiles

from plugport.authoring import archive_facts, pack_plugin
from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions, SqlTaskStore, engine_for
from plugport.sdk._task import Task
from plugport.signing import generate_private_key, public_key_pem, sign

T = TypeVar("T")
PLUGIN = "bench.tasks"
TARGET_TASKS_PER_S = 500
TARGET_QUEUE_OVERHEAD_MS = 5.0
TARGET_WORKFLOW_STEP_MS = 10.0

CODE = """\
import asyncio, time
from plugport.sdk import Plugin, task


class Main(Plugin):
    @task("NOOP")
    async def noop(self, t):
        return None

    @task("STAMP")
    async def stamp(self, t):
        return {"started": time.time()}

    @task("EFFECT")
    async def effect(self, t):
        key = t.idempotency_key
        await self.api.storage.set(f"run:{key}:{t.attempt}", t.id)
        if await self.api.storage.get(f"effect:{key}") is None:
            await self.api.storage.set(f"effect:{key}", t.attempt)
        await self.api.tasks.progress(10, "effect recorded")
        while not await self.api.storage.get("gate"):
            await asyncio.sleep(0.05)
        done = await self.api.storage.get(f"done:{key}") or 0
        await self.api.storage.set(f"done:{key}", done + 1)
        return {"key": key}
"""
"""``EFFECT`` records each attempt, applies its effect once per idempotency key, then waits
until the host sets the storage key ``gate``, and counts its completions."""

MANIFEST = """\
name = "bench.tasks"
version = "1.0.0"
entry = "main:Main"

[permissions]
storage = "1 MiB"
{limits}
[tasks.NOOP]
max-attempts = 1

[tasks.STAMP]
max-attempts = 1

[tasks.EFFECT]
idempotency-key = "/key"
timeout-ms = 120000
payload = {{ type = "object", required = ["key"], properties = {{ key = {{ type = "string" }} }} }}
"""

# The host process the crash scenario kills: submits the gated tasks, then waits.
CRASH_NODE = """\
import asyncio, sys
from pathlib import Path
from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions

async def main(home, total, running):
    host = PluginHost(app="bench", app_version="1", home=Path(home), consent=lambda r: True,
                      task_options=QueueOptions(concurrency=running))
    async with host:
        for i in range(total):
            await host.tasks.submit("EFFECT", {"key": f"k{i:03}"})
        await asyncio.Event().wait()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


@dataclass(frozen=True)
class Sizes:
    tasks: int
    overhead_samples: int
    bare_calls: int
    workflow_steps: int
    crash_queued: int
    crash_running: int
    distributed_tasks: int


FULL = Sizes(5000, 300, 3000, 10, 100, 10, 2000)
QUICK = Sizes(500, 40, 300, 3, 20, 10, 200)


# --- setup ----------------------------------------------------------------------------------


def _install(home: Path, root: Path, *, max_concurrency: int | None = None) -> None:
    """``bench.tasks`` signed and installed into ``home`` (default limits unless told)."""
    source = root / "src"
    source.mkdir(parents=True)
    (source / "main.py").write_text(CODE)
    limits = "" if max_concurrency is None else f"[limits]\nmax_concurrency = {max_concurrency}\n"
    (source / "plugport.toml").write_text(MANIFEST.format(limits=limits))
    key = generate_private_key()
    archive = pack_plugin(source, root / "dist").result.path
    Path(f"{archive}.sig").write_bytes(sign(key, archive_facts(archive)))
    public = root / "bench.pub"
    public.write_text(public_key_pem(key.public_key()))

    async def main() -> None:
        host = PluginHost(
            app="bench", app_version="1", home=home, consent=lambda r: True, run_tasks=False
        )
        async with host:
            await host.install(str(archive), key=public)

    asyncio.run(main())


def _with_host(home: Path, action: Callable[[PluginHost], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        host = PluginHost(app="bench", app_version="1", home=home, consent=lambda r: True, **kwargs)
        async with host:
            return await action(host)

    return asyncio.run(main())


def _open_gate(host: PluginHost) -> None:
    host.supervisor.services.storage.set(PLUGIN, "gate", True, quota_bytes=1 << 20)


# --- throughput and overhead through a host -------------------------------------------------


async def _drain(host: PluginHost, count: int) -> dict[str, Any]:
    """Submit ``count`` no-op tasks, then wait until all ended; rates per second."""
    ended = 0
    all_ended = asyncio.Event()

    def finished(_: Any) -> None:
        nonlocal ended
        ended += 1
        if ended >= count:
            all_ended.set()

    unsubscribe = host.tasks.on_finished(finished)
    try:
        started = time.perf_counter()
        for _ in range(count):
            await host.tasks.submit("NOOP")
        submitted = time.perf_counter()
        await asyncio.wait_for(all_ended.wait(), timeout=300)
        drained = time.perf_counter()
    finally:
        unsubscribe()
    succeeded = sum(
        n for (_, t, s), n in host.tasks.store.counts().items() if t == "NOOP" and s == "succeeded"
    )
    return {
        "tasks": count,
        "tasks_per_s": round(count / (drained - started)),
        "submit_per_s": round(count / (submitted - started)),
        "drain_per_s": round(count / (drained - submitted)),
        "submit_s": round(submitted - started, 3),
        "drain_s": round(drained - submitted, 3),
        "succeeded_noop_total": succeeded,
    }


async def _overhead(host: PluginHost, samples: int) -> dict[str, Any]:
    """``submit`` -> handler start and -> result, one task at a time on an idle queue."""
    to_start: list[float] = []
    to_result: list[float] = []
    for n in range(samples + 10):
        await asyncio.sleep(0.005)  # idle: the node waits on its wake-up event
        t0 = time.time()
        record = await host.tasks.submit("STAMP")
        done = await host.tasks.await_result(record.id, timeout_s=30)
        ended = time.time()
        if done.state != "succeeded":
            raise RuntimeError(f"STAMP task {done.id} ended {done.state}: {done.error}")
        if n >= 10:  # warm-up
            to_start.append((done.result["started"] - t0) * 1000)
            to_result.append((ended - t0) * 1000)
    return {
        "samples": samples,
        "submit_to_handler_start": percentiles(to_start, 3, suffix="_ms"),
        "submit_to_result": percentiles(to_result, 3, suffix="_ms"),
    }


def _wire(task_type: str) -> dict[str, Any]:
    return Task(id=uuid.uuid4().hex, type=task_type, payload=None).to_wire()


async def _bare_calls(host: PluginHost, calls: int, samples: int) -> dict[str, Any]:
    """The same handlers through ``Supervisor.run_task`` alone: no store, no queue."""
    runtime = host.supervisor
    limit = runtime.task_types()["NOOP"][0][2].max_concurrency
    to_start: list[float] = []
    for _ in range(samples):
        t0 = time.time()
        result = await runtime.run_task(PLUGIN, "STAMP", _wire("STAMP"), timeout_ms=5000)
        to_start.append((result["started"] - t0) * 1000)
    left = calls

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await runtime.run_task(PLUGIN, "NOOP", _wire("NOOP"), timeout_ms=5000)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(limit)))
    elapsed = time.perf_counter() - started
    return {
        "calls": calls,
        "concurrency": limit,
        "calls_per_s": round(calls / elapsed),
        "call_to_handler_start": percentiles(to_start, 3, suffix="_ms"),
    }


def _bare_huey(path: Path, count: int) -> dict[str, Any]:
    """SqliteHuey alone (our ``HueyEngine``, same pragmas): push ``count`` ids, pop them."""
    engine = engine_for(path)
    ids = [uuid.uuid4().hex for _ in range(count)]
    try:
        started = time.perf_counter()
        for task_id in ids:
            engine.push(task_id)
        pushed = time.perf_counter()
        popped = 0
        while engine.pop(time.time()) is not None:
            popped += 1
        ended = time.perf_counter()
    finally:
        engine.close()
    return {
        "ids": count,
        "popped": popped,
        "per_s": round(count / (ended - started)),
        "push_per_s": round(count / (pushed - started)),
        "pop_per_s": round(count / (ended - pushed)),
    }


async def _through_host(host: PluginHost, sizes: Sizes, count: int) -> dict[str, Any]:
    await host.tasks.start()  # idempotent; makes sure the node runs before timing
    for _ in range(20):  # warm up: the worker activates, caches fill
        record = await host.tasks.submit("NOOP")
        await host.tasks.await_result(record.id, timeout_s=30)
    return {
        "throughput": await _drain(host, count),
        "overhead": await _overhead(host, sizes.overhead_samples),
    }


def embedded(root: Path, sizes: Sizes) -> dict[str, Any]:
    home = root / "embedded"
    _install(home, root / "plugin")

    async def measure(host: PluginHost) -> dict[str, Any]:
        figures = await _through_host(host, sizes, sizes.tasks)
        figures["bare_run_task"] = await _bare_calls(host, sizes.bare_calls, sizes.overhead_samples)
        return figures

    figures = _with_host(home, measure)
    figures["bare_sqlite_huey"] = _bare_huey(root / "bare-queue.sqlite", sizes.tasks)
    rate = figures["throughput"]["tasks_per_s"]
    figures["ratios"] = {
        "tasks_per_s_to_bare_run_task": round(rate / figures["bare_run_task"]["calls_per_s"], 3),
        "tasks_per_s_to_bare_huey": round(rate / figures["bare_sqlite_huey"]["per_s"], 3),
    }
    figures["queue_options"] = "defaults (QueueOptions()); plugin limits: defaults"
    return figures


# --- workflows ------------------------------------------------------------------------------


def _workflow_toml(steps: int) -> str:
    """A chain of ``steps`` no-op steps, each needing the one before."""
    lines = ['name = "bench"']
    for n in range(steps):
        lines += ["", f"[steps.s{n}]", 'task = "NOOP"', f'plugin = "{PLUGIN}"']
        if n:
            lines.append(f'needs = ["s{n - 1}"]')
    return "\n".join(lines) + "\n"


def workflow(root: Path, sizes: Sizes, task_ms: float | None) -> dict[str, Any]:
    """Per step, what a sequential workflow adds to one task's submit -> result."""
    home = root / "embedded"

    async def measure(host: PluginHost) -> list[float]:
        runs = []
        for n in range(6):
            t0 = time.perf_counter()
            run = await host.workflows.start(_workflow_toml(sizes.workflow_steps), {})
            done = await host.workflows.await_run(run.id, timeout_s=60)
            if done.state != "succeeded":
                raise RuntimeError(f"the benchmark's run ended {done.state}: {done.error}")
            if n:  # the first one warms up
                runs.append((time.perf_counter() - t0) * 1000)
        return runs

    runs = _with_host(home, measure)
    run_ms = percentiles(runs, 3)["p50"]
    per_step = (run_ms - sizes.workflow_steps * (task_ms or 0.0)) / sizes.workflow_steps
    return {
        "value": round(per_step, 3),
        "target": TARGET_WORKFLOW_STEP_MS,
        "met": per_step <= TARGET_WORKFLOW_STEP_MS,
        "steps": sizes.workflow_steps,
        "run_p50_ms": run_ms,
        "task_submit_to_result_p50_ms": task_ms,
    }


# --- kill -9 with tasks queued and running --------------------------------------------------


def crash(root: Path, sizes: Sizes) -> dict[str, Any]:
    queued, running = sizes.crash_queued, sizes.crash_running
    home = root / "crash"
    _install(home, root / "crash-plugin", max_concurrency=running)
    store = SqlTaskStore(home / "tasks.sqlite")
    log = root / "crash-node.log"
    with log.open("wb") as sink:
        node = subprocess.Popen(
            [sys.executable, "-c", CRASH_NODE, str(home), str(queued + running), str(running)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            started = [r for r in store.find(state="running") if r.progress is not None]
            if len(started) == running and len(store.find(state="queued", limit=1000)) == queued:
                break
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError(f"the crash node did not get going:\n{log.read_text()}")
            time.sleep(0.05)
        os.kill(node.pid, signal.SIGKILL)
        node.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.wait()
    at_kill = {"queued": len(store.find(state="queued", limit=1000))}
    at_kill["running"] = len(store.find(state="running"))

    async def drain(host: PluginHost) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        _open_gate(host)
        for record in host.tasks.find(limit=1000):
            await host.tasks.await_result(record.id, timeout_s=120)
        storage = host.supervisor.services.storage
        keys = storage.keys(PLUGIN, "", limit=10_000)
        return time.perf_counter() - started, {k: storage.get(PLUGIN, k) for k in keys}

    recovery_s, stored = _with_host(home, drain, task_options=QueueOptions(concurrency=running))
    records = store.find(limit=1000)
    store.close()
    done = [v for k, v in stored.items() if k.startswith("done:")]
    runs = sum(k.startswith("run:") for k in stored)
    effects = sum(k.startswith("effect:") for k in stored)
    succeeded = sum(r.state == "succeeded" for r in records)
    reruns = sum(r.reruns for r in records)
    exactly_once = (
        succeeded == len(records) == queued + running
        and done == [1] * len(records)
        and effects == len(records)
        and reruns == running
    )
    return {
        "queued": at_kill["queued"],
        "running": at_kill["running"],
        "reruns": reruns,
        "succeeded": succeeded,
        "handler_runs": runs,
        "effects_applied": effects,
        "completions": sum(done),
        "exactly_once": exactly_once,
        "recovery_s": round(recovery_s, 2),
    }


# --- the distributed backend ----------------------------------------------------------------


@contextlib.contextmanager
def _fresh_database(url: str) -> Iterator[str]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    server = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def distributed(root: Path, sizes: Sizes, url: str) -> dict[str, Any]:
    """One worker host on PostgreSQL (``exclusive=False``), the embedded run's plugin."""
    with _fresh_database(url) as tasks_url:
        figures = _with_host(
            root / "embedded",
            lambda host: _through_host(host, sizes, sizes.distributed_tasks),
            tasks_url=tasks_url,
            task_options=QueueOptions(exclusive=False),
        )
    figures["backend"] = "PostgreSQL (task records) + PostgresHuey (queue), one database"
    return figures


# --- the whole run --------------------------------------------------------------------------


def _target(target: Any, value: Any, met: bool | None, **extra: Any) -> dict[str, Any]:
    return {"value": value, "target": target, "met": met, **extra}


def run(sizes: Sizes, quick: bool, postgres_url: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "tasks", "quick": quick}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        result["embedded"] = embedded(root, sizes)
        overhead = result["embedded"]["overhead"]
        task_ms = overhead["submit_to_result"]["p50_ms"]
        result["crash"] = crash(root, sizes)
        wf = workflow(root, sizes, task_ms)
        if postgres_url:
            result["distributed"] = distributed(root, sizes, postgres_url)
    throughput = result["embedded"]["throughput"]
    bare = result["embedded"]["bare_run_task"]
    overhead_ms = overhead["submit_to_handler_start"]["p50_ms"]
    result["targets"] = {
        "tasks_per_s_embedded": _target(
            f">= {TARGET_TASKS_PER_S}",
            throughput["tasks_per_s"],
            throughput["tasks_per_s"] >= TARGET_TASKS_PER_S if not quick else None,
            tasks=throughput["tasks"],
            ratio_to_bare_run_task=result["embedded"]["ratios"]["tasks_per_s_to_bare_run_task"],
        ),
        "queue_overhead_p50_ms": _target(
            f"<= {TARGET_QUEUE_OVERHEAD_MS}",
            overhead_ms,
            overhead_ms <= TARGET_QUEUE_OVERHEAD_MS,
            bare_run_task_p50_ms=bare["call_to_handler_start"]["p50_ms"],
        ),
        "workflow_step_overhead_ms": wf,
        "crash_exactly_once": _target(
            "all succeed once after kill -9, reruns == running",
            result["crash"]["exactly_once"],
            result["crash"]["exactly_once"],
        ),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON on one line")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--tasks", type=int, help="no-op tasks to submit and drain")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PLUGPORT_TEST_POSTGRES_URL"),
        help="also measure the distributed backend (a fresh database on this server)",
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.tasks:
        sizes = replace(sizes, tasks=args.tasks)
    result = run(sizes, args.quick, args.postgres_url)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
