"""The inbox keeps every accepted delivery, as a ``@webhook`` task on the host's one durable
queue, until its handler took it or it ran out of attempts; refuses to queue a delivery twice;
survives its process being killed; retries on the inbox's schedule; forgets handled ones only
past their retention and replay window; and moves a Plugport 0.2 inbox file onto the queue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from plugport.errors import InvalidInputError, NotFoundError
from plugport.host.inbound._inbox_rules import REPLAY_GUARD_S
from plugport.host.inbound.inbox import Delivery, TaskInbox, legacy_inbox_path
from plugport.host.tasks import QueueOptions, TaskQueue, engine_for, open_task_store
from plugport.runtime.supervisor import Supervisor, SupervisorConfig

DAY = 86400.0


@asynccontextmanager
async def inbox_on(
    root: Path,
    deliver: Callable[[Delivery], object] | None = None,
    *,
    start: bool = True,
    clock: Callable[[], float] | None = None,
    **options: object,
) -> AsyncIterator[TaskInbox]:
    """A queue on SQLite files under ``root`` with the inbox registered on it (started:
    delivering with ``deliver``), as a workspace has it."""
    supervisor = Supervisor(SupervisorConfig(state_dir=root / "runtime", ping_interval_s=0))
    queue = TaskQueue(
        supervisor,
        open_task_store(root / "tasks.sqlite"),
        engine_for(root / "tasks-queue.sqlite"),
        options=QueueOptions(poll_s=0.01),
        **({"clock": clock} if clock else {}),  # type: ignore[arg-type]
    )

    async def handed(delivery: Delivery) -> None:
        if deliver is not None:
            outcome = deliver(delivery)
            if asyncio.iscoroutine(outcome):
                await outcome

    inbox = TaskInbox(queue, handed, **options)  # type: ignore[arg-type]
    if start:
        await queue.start()
    try:
        yield inbox
    finally:
        await queue.close()
        await supervisor.close()


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


async def _accept(inbox: TaskInbox, delivery_id: str | None, body: bytes = b"{}") -> str:
    accepted = await inbox.accept(
        "acme.gh", "push", delivery_id, headers={"x-github-event": "push"}, body=body, now=10.0
    )
    return accepted.id


def test_a_duplicate_is_not_queued_again_and_no_id_never_collides(tmp_path: Path) -> None:
    async def main() -> None:
        async with inbox_on(tmp_path, start=False) as inbox:
            first = await inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"a", now=1.0)
            again = await inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"b", now=2.0)
            other = await inbox.accept("acme.gh", "issues", "d-1", headers={}, body=b"c", now=2)
            assert (first.duplicate, again.duplicate, again.id, other.duplicate) == (
                False,
                True,
                first.id,
                False,
            )
            assert await _accept(inbox, None) != await _accept(inbox, None)
            assert len(inbox.list()) == 4
            kept = inbox.get(first.id)
            assert kept is not None
            assert (kept.body, kept.state, kept.endpoint) == (b"a", "pending", "push")
            assert inbox.get("missing") is None
            assert inbox.pending()

    asyncio.run(main())


def test_a_failing_handler_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    calls: list[int] = []
    failures: list[tuple[str, str]] = []

    def deliver(delivery: Delivery) -> None:
        calls.append(delivery.attempts)
        if delivery.attempts < 3:
            raise ValueError(f"attempt {delivery.attempts} fails")

    async def main() -> None:
        async with inbox_on(
            tmp_path,
            deliver,
            base_delay_s=0.01,
            on_failure=lambda d, state, error: failures.append((state, error)),
        ) as inbox:
            row = await _accept(inbox, "d-1")
            await _until(lambda: inbox.get(row).state == "done")  # type: ignore[union-attr]
            [done] = inbox.list()
            assert (done.state, done.attempts, done.last_error) == ("done", 3, "")

    asyncio.run(main())
    assert calls == [1, 2, 3]
    assert failures == [
        ("pending", "ValueError: attempt 1 fails"),
        ("pending", "ValueError: attempt 2 fails"),
    ]


def test_attempts_run_out_to_a_dead_letter_that_the_operator_retries(tmp_path: Path) -> None:
    refuse = [True]

    def deliver(delivery: Delivery) -> None:
        if refuse[0]:
            raise ValueError("nope")

    async def main() -> None:
        async with inbox_on(tmp_path, deliver, max_attempts=2, base_delay_s=0.01) as inbox:
            row = await _accept(inbox, "d-1")
            await _until(lambda: inbox.get(row).state == "dead")  # type: ignore[union-attr]
            dead = inbox.get(row)
            assert dead is not None
            assert (dead.attempts, dead.last_error) == (2, "ValueError: nope")
            assert [d.id for d in inbox.list(state="dead")] == [row]
            assert inbox.list(state="pending") == []
            # still a duplicate while dead: a resend is not queued again
            assert (
                await inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"", now=1)
            ).duplicate
            refuse[0] = False
            retried = await inbox.retry(row)
            assert (retried.state, retried.attempts) == ("pending", 0)
            await _until(lambda: inbox.get(row).state == "done")  # type: ignore[union-attr]
            with pytest.raises(InvalidInputError, match="is done, not dead"):
                await inbox.retry(row)
            with pytest.raises(NotFoundError):
                await inbox.retry("missing")
            # a handled one is a duplicate too
            assert (
                await inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"", now=1)
            ).duplicate

    asyncio.run(main())


KILLED = """\
import asyncio, sys, time
from pathlib import Path
from plugport.host.inbound.inbox import TaskInbox
from plugport.host.tasks import TaskQueue, engine_for, open_task_store
from plugport.runtime.supervisor import Supervisor, SupervisorConfig

root = Path(sys.argv[1])

async def never(delivery):
    await asyncio.sleep(3600)  # the handler this process runs never finishes

async def main():
    supervisor = Supervisor(SupervisorConfig(state_dir=root / "runtime", ping_interval_s=0))
    queue = TaskQueue(supervisor, open_task_store(root / "tasks.sqlite"),
                      engine_for(root / "tasks-queue.sqlite"))
    inbox = TaskInbox(queue, never)
    await inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"claimed", now=time.time())
    await queue.start()
    while queue.store.find(state="running") == []:
        await asyncio.sleep(0.01)
    await inbox.accept("acme.gh", "push", "d-2", headers={}, body=b"accepted", now=time.time())
    print("ready", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_deliveries_survive_kill_9_and_are_delivered_after_restart(tmp_path: Path) -> None:
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(KILLED))
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
    assert process.returncode == -signal.SIGKILL

    delivered: list[bytes] = []

    async def main() -> None:
        async with inbox_on(tmp_path, lambda d: delivered.append(d.body)) as inbox:
            await _until(lambda: {d.state for d in inbox.list()} == {"done"})
            cut = [d for d in inbox.list() if d.body == b"claimed"]
            assert cut[0].attempts == 2  # the attempt killed with its process, then this one
            assert inbox.queue.get(cut[0].id).reruns == 1

    asyncio.run(main())
    assert sorted(delivered) == [b"accepted", b"claimed"]


def test_handled_deliveries_are_forgotten_past_retention_and_replay_window(
    tmp_path: Path,
) -> None:
    """Retention one day: a handled delivery stays (listed, a resend is a duplicate) until a
    day and the replay window after it; dead and pending ones stay."""
    clock = [1000.0]

    def deliver(delivery: Delivery) -> None:
        if delivery.body == b"no":
            raise ValueError("refused")

    async def main() -> None:
        async with inbox_on(
            tmp_path, deliver, clock=lambda: clock[0], max_attempts=1, retention_s=DAY
        ) as inbox:
            handled = (
                await inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"ok", now=1)
            ).id
            dead = (await inbox.accept("acme.gh", "push", "d-2", headers={}, body=b"no", now=1)).id
            await _until(lambda: {r.state for r in inbox.list()} == {"done", "dead"})
            later = (await inbox.accept("acme.gh", "push", "d-3", headers={}, body=b"", now=1)).id
            await inbox.queue.cancel(later)  # stays, as a dead one does
            queue = inbox.queue
            clock[0] = 1000.0 + DAY + REPLAY_GUARD_S - 1
            assert queue.prune(every_s=0) == 0
            assert (
                await inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"", now=1)
            ).duplicate
            clock[0] = 1000.0 + DAY + REPLAY_GUARD_S + 1
            assert queue.prune(every_s=0) == 1
            assert inbox.get(handled) is None
            assert inbox.get(dead).state == "dead"  # type: ignore[union-attr]
            assert inbox.get(later).state == "dead"  # type: ignore[union-attr]
            clock[0] = 1e10
            assert queue.prune(every_s=0) == 0

    asyncio.run(main())


def test_a_plugport_0_2_inbox_file_is_moved_onto_the_queue(tmp_path: Path) -> None:
    path = legacy_inbox_path(tmp_path)
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, plugin TEXT NOT NULL, "
        "endpoint TEXT NOT NULL, delivery_id TEXT, received_at REAL NOT NULL, headers TEXT NOT "
        "NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, "
        "state TEXT NOT NULL DEFAULT 'pending', last_error TEXT NOT NULL DEFAULT '', "
        "finished_at REAL, UNIQUE (plugin, endpoint, delivery_id));"
    )
    rows = [("d-1", "pending", b"one"), ("d-2", "running", b"two"), ("d-3", "done", b"three")]
    for delivery_id, state, body in rows:
        old.execute(
            "INSERT INTO deliveries (plugin, endpoint, delivery_id, received_at, headers, body, "
            "next_at, state) VALUES ('acme.gh', 'push', ?, 5.0, ?, ?, 6.0, ?)",
            (delivery_id, json.dumps({"x-github-event": "push"}), body, state),
        )
    old.commit()
    old.close()
    delivered: list[bytes] = []

    async def main() -> None:
        async with inbox_on(tmp_path, lambda d: delivered.append(d.body)) as inbox:
            assert await inbox.import_legacy(path) == 2
            assert await inbox.import_legacy(path) == 0  # renamed: done once
            await _until(lambda: len(delivered) == 2)
            assert {d.delivery_id for d in inbox.list()} == {"d-1", "d-2"}
            assert inbox.list()[0].headers == {"x-github-event": "push"}

    asyncio.run(main())
    assert sorted(delivered) == [b"one", b"two"]
    assert not path.exists()
    assert path.with_name("inbox.sqlite.migrated").is_file()


def test_purge_removes_only_the_plugins_deliveries(tmp_path: Path) -> None:
    async def main() -> None:
        async with inbox_on(tmp_path, start=False) as inbox:
            await _accept(inbox, "d-1")
            await inbox.accept("acme.other", "push", "d-1", headers={}, body=b"", now=1.0)
            assert inbox.queue.purge("acme.gh") == 1
            assert [d.plugin for d in inbox.list()] == ["acme.other"]

    asyncio.run(main())
