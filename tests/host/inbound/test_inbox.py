"""The inbox keeps every accepted delivery until its handler took it or it ran out of attempts,
refuses to queue a delivery twice, and survives its process being killed; the dispatcher
retries on the inbox's schedule."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plugport.host.inbound._inbox_rules import (
    REPLAY_GUARD_S,
    after_failure,
    prunable,
    retry_delay_s,
)
from plugport.host.inbound.dispatcher import Dispatcher
from plugport.host.inbound.inbox import Delivery, SqliteInbox, purge_inbox


def test_the_backoff_doubles_is_capped_and_jittered_within_bounds() -> None:
    low = [retry_delay_s(n, random=lambda: 0.0) for n in range(1, 6)]
    high = [retry_delay_s(n, random=lambda: 1.0) for n in range(1, 6)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert high == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert retry_delay_s(40, random=lambda: 1.0) == 3600.0
    assert after_failure(7, 100.0, random=lambda: 0.0) == ("pending", 100.0 + 32.0)
    assert after_failure(8, 100.0, random=lambda: 0.0) == ("dead", 100.0)


def _accept(inbox: SqliteInbox, delivery_id: str | None, body: bytes = b"{}") -> int:
    accepted = inbox.accept(
        "acme.gh", "push", delivery_id, headers={"x-github-event": "push"}, body=body, now=10.0
    )
    return accepted.id


def test_a_duplicate_is_not_queued_again_and_no_id_never_collides() -> None:
    inbox = SqliteInbox(":memory:")
    first = inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"a", now=1.0)
    again = inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"b", now=2.0)
    other = inbox.accept("acme.gh", "issues", "d-1", headers={}, body=b"c", now=2.0)
    assert (first.duplicate, again.duplicate, again.id, other.duplicate) == (
        False,
        True,
        first.id,
        False,
    )
    assert _accept(inbox, None) != _accept(inbox, None)
    assert len(inbox.list()) == 4
    assert inbox.get(first.id).body == b"a"  # type: ignore[union-attr]


def test_claims_count_attempts_and_failures_back_off_then_die() -> None:
    inbox = SqliteInbox(":memory:", max_attempts=2, random=lambda: 0.0)
    row = _accept(inbox, "d-1")
    [claimed] = inbox.claim_due(10.0, 10)
    assert (claimed.id, claimed.attempts, claimed.state) == (row, 1, "running")
    assert inbox.claim_due(10.0, 10) == []  # claimed: not handed out twice
    assert inbox.failed(row, "ValueError: nope", 11.0) == "pending"
    assert inbox.claim_due(11.0, 10) == []  # not due before its backoff
    assert inbox.next_due() == 11.5
    [claimed] = inbox.claim_due(11.5, 10)
    assert inbox.failed(row, "ValueError: nope", 12.0) == "dead"
    dead = inbox.get(row)
    assert dead is not None
    assert (dead.state, dead.attempts, dead.last_error) == ("dead", 2, "ValueError: nope")
    assert inbox.next_due() is None


def test_purge_removes_only_the_plugins_rows(tmp_path: Path) -> None:
    inbox = SqliteInbox(tmp_path / "inbox.sqlite")
    _accept(inbox, "d-1")
    inbox.accept("acme.other", "push", "d-1", headers={}, body=b"", now=1.0)
    inbox.close()
    assert purge_inbox(tmp_path, "acme.gh") == 1
    assert purge_inbox(tmp_path, "acme.gh") == 0
    assert purge_inbox(tmp_path / "nowhere", "acme.gh") == 0
    inbox = SqliteInbox(tmp_path / "inbox.sqlite")
    assert [d.plugin for d in inbox.list()] == ["acme.other"]


def test_the_dispatcher_retries_a_failing_handler_until_it_succeeds() -> None:
    inbox = SqliteInbox(":memory:", base_delay_s=0.01, random=lambda: 0.0)
    calls: list[int] = []
    failures: list[tuple[str, str]] = []

    async def deliver(delivery: Delivery) -> None:
        calls.append(delivery.attempts)
        if delivery.attempts < 3:
            raise ValueError(f"attempt {delivery.attempts} fails")

    async def main() -> None:
        dispatcher = Dispatcher(
            inbox, deliver, on_failure=lambda d, state, error: failures.append((state, error))
        )
        dispatcher.start()
        row = await asyncio.to_thread(_accept, inbox, "d-1")
        dispatcher.wake()
        for _ in range(200):
            found = inbox.get(row)
            if found is not None and found.state == "done":
                break
            await asyncio.sleep(0.01)
        await dispatcher.close()

    asyncio.run(main())
    assert calls == [1, 2, 3]
    assert failures == [
        ("pending", "ValueError: attempt 1 fails"),
        ("pending", "ValueError: attempt 2 fails"),
    ]
    [done] = inbox.list()
    assert (done.state, done.attempts, done.last_error) == ("done", 3, "")


KILLED = """\
import sys, time
from plugport.host.inbound.inbox import SqliteInbox
inbox = SqliteInbox(sys.argv[1])
inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"accepted", now=time.time())
inbox.accept("acme.gh", "push", "d-2", headers={}, body=b"claimed", now=time.time())
inbox.claim_due(time.time() + 1, 1)  # d-1 taken by a dispatcher that never finishes
print("ready", flush=True)
time.sleep(60)
"""


def test_deliveries_survive_kill_9_and_are_delivered_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite"
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(KILLED))
    process = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
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

    inbox = SqliteInbox(path)  # a new process opens the same file
    delivered: list[bytes] = []

    async def deliver(delivery: Delivery) -> None:
        delivered.append(delivery.body)

    async def main() -> None:
        dispatcher = Dispatcher(inbox, deliver)
        dispatcher.start()
        for _ in range(300):
            if len(delivered) == 2 and all(d.state == "done" for d in inbox.list()):
                break
            await asyncio.sleep(0.01)
        await dispatcher.close()

    asyncio.run(main())
    assert sorted(delivered) == [b"accepted", b"claimed"]
    assert {d.state for d in inbox.list()} == {"done"}


@pytest.mark.parametrize("state", ["done", "dead"])
def test_a_finished_delivery_still_counts_as_a_duplicate(state: str) -> None:
    inbox = SqliteInbox(":memory:", max_attempts=1)
    row = _accept(inbox, "d-1")
    inbox.claim_due(10.0, 1)
    if state == "done":
        inbox.done(row, 10.0)
    else:
        inbox.failed(row, "x", 10.0)
    assert inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"", now=11.0).duplicate
    assert inbox.claim_due(100.0, 10) == []


DAY = 86400.0


def test_only_handled_deliveries_past_retention_and_replay_window_are_prunable() -> None:
    keep = 7 * DAY
    now = 100 * DAY
    old = now - keep - REPLAY_GUARD_S - 1
    assert prunable("done", old, old, now, keep)
    assert not prunable("done", old, now - keep + 1, now, keep)  # handled too recently
    assert not prunable("done", now - keep - 1, now - keep - 1, now, keep)  # replay window
    for state in ("pending", "running", "dead"):
        assert not prunable(state, old, old, now, keep)
    assert prunable("done", now - REPLAY_GUARD_S - 1, now - 1, now, 0.0)


def test_the_dispatcher_prunes_handled_deliveries_on_a_fake_clock(tmp_path: Path) -> None:
    """Retention one day: a handled delivery stays (listed, a resend is a duplicate) until a
    day after it was handled and past its replay window; dead and pending ones stay."""
    clock = [1000.0]
    inbox = SqliteInbox(tmp_path / "inbox.sqlite", max_attempts=1)
    handled = inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"ok", now=clock[0]).id
    dead = inbox.accept("acme.gh", "push", "d-2", headers={}, body=b"no", now=clock[0]).id
    later = inbox.accept("acme.gh", "push", "d-3", headers={}, body=b"later", now=1e12).id

    async def deliver(delivery: Delivery) -> None:
        if delivery.body == b"no":
            raise ValueError("refused")

    async def settle(dispatcher: Dispatcher, at: float) -> None:
        clock[0] = at
        dispatcher.wake()
        for _ in range(500):
            if dispatcher.pruned_at == at and not dispatcher._running:
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"the dispatcher did not run at {at}")

    async def main() -> None:
        dispatcher = Dispatcher(
            inbox, deliver, clock=lambda: clock[0], retention_s=DAY, prune_every_s=0
        )
        dispatcher.start()
        for _ in range(500):
            if {r.state for r in inbox.list() if r.id != later} == {"done", "dead"}:
                break
            await asyncio.sleep(0.01)
        assert inbox.get(handled).finished_at == 1000.0  # type: ignore[union-attr]
        await settle(dispatcher, 1000.0 + DAY + REPLAY_GUARD_S - 1)
        assert inbox.get(handled) is not None
        assert inbox.accept("acme.gh", "push", "d-1", headers={}, body=b"", now=clock[0]).duplicate
        await settle(dispatcher, 1000.0 + DAY + REPLAY_GUARD_S + 1)
        assert dispatcher.pruned == 1
        await settle(dispatcher, 1e9)  # long after: still only handled ones go
        await dispatcher.close()

    asyncio.run(main())
    assert inbox.get(handled) is None
    assert inbox.get(dead).state == "dead"  # type: ignore[union-attr]
    assert inbox.get(later).state == "pending"  # type: ignore[union-attr]
    inbox.close()


def test_an_inbox_written_before_finished_at_existed_gets_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "inbox.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, plugin TEXT NOT NULL, "
        "endpoint TEXT NOT NULL, delivery_id TEXT, received_at REAL NOT NULL, headers TEXT NOT "
        "NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL, "
        "state TEXT NOT NULL DEFAULT 'pending', last_error TEXT NOT NULL DEFAULT '', "
        "UNIQUE (plugin, endpoint, delivery_id));"
        "INSERT INTO deliveries (plugin, endpoint, delivery_id, received_at, headers, body, "
        "next_at, state) VALUES ('acme.gh', 'push', 'd-1', 5.0, '{}', x'', 6.0, 'done');"
    )
    old.commit()
    old.close()
    inbox = SqliteInbox(path)
    [row] = inbox.list()
    assert (row.state, row.finished_at) == ("done", None)
    assert inbox.prune(6.0 + DAY, DAY) == 0  # counted from its last claim (next_at)
    assert inbox.prune(6.0 + DAY + REPLAY_GUARD_S, DAY) == 1
    inbox.close()
