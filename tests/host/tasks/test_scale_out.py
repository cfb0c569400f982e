"""Two worker hosts on the distributed backend (records and PostgresHuey's queue in one
PostgreSQL database) share the tasks, a killed worker's task is run again by the other once its
lease ran out, and no task runs to completion twice.

Real processes: each worker is a node process (:mod:`tests.host.tasks._node`) with its own home
and the tasker installed, ``exclusive=False`` and a 2 s lease; the test submits from a third
host that does not run tasks. The tasks are gated ``EFFECT`` ones, so each worker holds exactly
its concurrency (2) of them until the test lets it finish. Each test gets a fresh database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plugport.host import PluginHost
from plugport.host.tasks import SqlTaskStore
from tests.host.tasks._node import start_node
from tests.host.tasks._tasks import PLUGIN, effects, install_tasker, storage_of, with_host

pytestmark = pytest.mark.slow  # worker processes

POSTGRES_URL = os.environ.get("PLUGPORT_TEST_POSTGRES_URL")
TASKS, PER_NODE, LEASE_S = 8, 2, 2.0


@pytest.fixture
def tasks_url() -> Iterator[str]:
    """A database of its own (created here, dropped afterwards): other tests share the
    server, and PostgresHuey's queue table has a fixed name."""
    if not POSTGRES_URL:
        pytest.skip("PLUGPORT_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    server = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(what: str, check: Callable[[], bool], logs: list[Path], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            said = "\n".join(f"--- {p}\n{p.read_text(errors='replace')}" for p in logs)
            pytest.fail(f"{what} did not happen in {timeout_s} s; the nodes said:\n{said}")
        time.sleep(0.05)


def stop(node: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait()


def test_two_workers_share_tasks_and_a_killed_ones_task_runs_once_more(
    tmp_path: Path, tasks_url: str
) -> None:
    homes = {name: tmp_path / name for name in ("submitter", "a", "b")}
    for name, home in homes.items():
        install_tasker(home, tmp_path / f"src-{name}")
    store = SqlTaskStore(tasks_url)
    nodes = {
        name: start_node(homes[name], concurrency=PER_NODE, tasks_url=tasks_url, lease_s=LEASE_S)
        for name in ("a", "b")
    }
    logs = [homes[name] / "node.log" for name in nodes]
    try:
        started = [homes[n] / "node" for n in nodes]
        wait_for("both workers started", lambda: all(p.exists() for p in started), logs)
        node_of = {(homes[n] / "node").read_text(): n for n in nodes}

        async def submit(host: PluginHost) -> list[str]:
            payloads = [{"key": f"k{i}", "gated": True} for i in range(TASKS)]
            return [(await host.tasks.submit("EFFECT", p)).id for p in payloads]

        ids = with_host(homes["submitter"], submit, tasks_url=tasks_url, run_tasks=False)

        def held_by_both() -> bool:
            started = [r for r in store.find(state="running") if r.progress is not None]
            return len(started) == 2 * PER_NODE

        wait_for("each worker running its 2 tasks", held_by_both, logs)
        running = store.find(state="running")
        assert Counter(node_of[r.node or ""] for r in running) == {"a": PER_NODE, "b": PER_NODE}
        cut_off = {r.id for r in running if node_of[r.node or ""] == "a"}

        os.kill(nodes["a"].pid, signal.SIGKILL)  # worker a's host process, mid-run
        nodes["a"].wait()
        (homes["b"] / "open-gate").touch()

        def all_done() -> bool:
            return store.counts() == {(PLUGIN, "EFFECT", "succeeded"): TASKS}

        # b finishes its own, takes the queued ones, and a's once their lease ran out
        wait_for("every task succeeded", all_done, logs)
    finally:
        for node in nodes.values():
            stop(node)

    records = {i: store.get(i) for i in ids}
    for task_id, record in records.items():
        assert record is not None
        rerun = task_id in cut_off
        assert (record.state, record.reruns, record.attempts) == ("succeeded", rerun, 1 + rerun)
        assert node_of[record.node or ""] == "b"  # a is dead: b finished everything
        attempts = [(node_of[a.node], a.outcome) for a in store.attempts_of(task_id)]
        assert attempts == ([("a", "interrupted"), ("b", "ok")] if rerun else [("b", "ok")])
    store.close()

    runs_a, applied_a, done_a = effects(storage_of(homes["a"]))
    runs_b, _, done_b = effects(storage_of(homes["b"]))
    keys = {f"k{i}" for i in range(TASKS)}
    cut_keys = {r.idempotency_key for i, r in records.items() if i in cut_off and r}
    assert set(runs_a) == set(applied_a) == cut_keys  # a ran its two, and was killed there
    assert not done_a
    assert runs_b == dict.fromkeys(keys, 1)
    assert done_a + done_b == dict.fromkeys(keys, 1)  # no task ran to completion twice
