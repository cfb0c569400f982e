"""A host killed with SIGKILL while tasks are queued and running loses none and finishes none
twice: after the restart every task succeeds once, the cut-off ones run again (counted in
``reruns``), and what they did is applied once per idempotency key.

Real processes: a node process (:mod:`tests.host.tasks._node`) submits 110 gated ``EFFECT``
tasks at a concurrency of 10, so 10 are running (each has recorded its run and its effect,
then waits at the gate) and 100 are queued when the test kills it; a new host on the same home
opens the gate and drains them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions, SqlTaskStore
from tests.host.tasks._node import start_node
from tests.host.tasks._tasks import (
    MANIFEST,
    PLUGIN,
    effects,
    install_tasker,
    open_gate,
    storage_of,
    with_host,
)

pytestmark = pytest.mark.slow  # a subprocess and real workers

QUEUED, RUNNING = 100, 10
TEN_AT_ONCE = MANIFEST.replace("max_concurrency = 4", f"max_concurrency = {RUNNING}")


def wait_for(what: str, check: Callable[[], bool], log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            said = log.read_text(errors="replace")
            pytest.fail(f"{what} did not happen in {timeout_s} s; the node said:\n{said}")
        time.sleep(0.05)


def stop(node: subprocess.Popen[bytes]) -> None:
    """SIGKILL the node's whole session (its zygote and workers die with it anyway)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait()


def test_kill_9_with_tasks_queued_and_running(tmp_path: Path) -> None:
    home = tmp_path / "home"
    install_tasker(home, tmp_path, manifest=TEN_AT_ONCE)
    store = SqlTaskStore(home / "tasks.sqlite")
    node = start_node(home, concurrency=RUNNING, submit=QUEUED + RUNNING)
    try:

        def cut_off_mid_run() -> bool:
            running = store.find(state="running")
            queued = store.find(state="queued", limit=1000)
            started = [r for r in running if r.progress is not None]  # run and effect stored
            return len(started) == RUNNING and len(queued) == QUEUED

        wait_for("10 tasks running and 100 queued", cut_off_mid_run, home / "node.log")
        os.kill(node.pid, signal.SIGKILL)  # the host process only, as a crash would
        node.wait()
    finally:
        stop(node)
    interrupted = {r.id: r for r in store.find(state="running")}
    assert len(interrupted) == RUNNING
    assert store.counts() == {(PLUGIN, "EFFECT", "running"): 10, (PLUGIN, "EFFECT", "queued"): 100}

    async def drain(host: PluginHost) -> list[str]:
        open_gate(host)
        ids = [r.id for r in host.tasks.find(limit=1000)]
        return [(await host.tasks.await_result(i, timeout_s=60)).state for i in ids]

    states = with_host(home, drain, options=QueueOptions(concurrency=RUNNING))
    assert states == ["succeeded"] * (QUEUED + RUNNING)

    records = store.find(limit=1000)
    assert store.counts() == {(PLUGIN, "EFFECT", "succeeded"): QUEUED + RUNNING}
    for record in records:
        rerun = record.id in interrupted
        assert (record.state, record.attempts, record.reruns) == ("succeeded", 1 + rerun, rerun)
        outcomes = [a.outcome for a in store.attempts_of(record.id)]
        assert outcomes == (["interrupted", "ok"] if rerun else ["ok"])
    assert sum(r.reruns for r in records) == RUNNING

    runs, applied, done = effects(storage_of(home))
    keys = {r.idempotency_key for r in records}
    rerun_keys = {r.idempotency_key for r in interrupted.values()}
    assert len(keys) == QUEUED + RUNNING
    assert runs == {k: 2 if k in rerun_keys else 1 for k in keys}  # each attempt really ran
    # the effect once per key: the re-runs found it applied by the attempt the kill cut off
    assert applied == dict.fromkeys(keys, 1)
    assert done == dict.fromkeys(keys, 1)  # and each task ran to completion once
    store.close()


FLOW = """\
name = "cut"
[steps.one]
task = "EFFECT"
payload = { key = "one", gated = true }
[steps.two]
task = "ADD"
needs = ["one"]
payload = { a = 1, b = 1 }
"""


def test_an_interrupted_workflow_run_resumes(tmp_path: Path) -> None:
    """kill -9 while a run's first step runs: a new host on the same home re-runs that step
    (its effect applied once), then the second step once, and the run succeeds."""
    home = tmp_path / "home"
    install_tasker(home, tmp_path)
    flow = tmp_path / "cut.toml"
    flow.write_text(FLOW)
    store = SqlTaskStore(home / "tasks.sqlite")
    node = start_node(home, concurrency=2, workflow=flow)
    try:

        def step_one_mid_run() -> bool:
            return any(r.progress is not None for r in store.find(state="running"))

        wait_for("the run's first step running", step_one_mid_run, home / "node.log")
        os.kill(node.pid, signal.SIGKILL)
        node.wait()
    finally:
        stop(node)
    run_id = (home / "run").read_text()
    assert [r.type for r in store.find()] == ["EFFECT"]  # step two was never queued

    async def resume(host: PluginHost) -> Any:
        open_gate(host)
        return await host.workflows.await_run(run_id, timeout_s=60)

    run = with_host(home, resume)
    assert run.state == "succeeded", run
    by_step = {r.workflow_step: r for r in store.find(workflow_run=run_id)}
    assert (by_step["one"].reruns, by_step["one"].attempts) == (1, 2)
    assert (by_step["two"].reruns, by_step["two"].attempts, by_step["two"].result) == (
        0,
        1,
        {"sum": 2},
    )
    runs, applied, done = effects(storage_of(home))
    key = by_step["one"].idempotency_key
    assert (runs[key], applied[key], done[key]) == (2, 1, 1)
    store.close()
