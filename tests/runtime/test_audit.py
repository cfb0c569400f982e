"""The audit log: one suite run against the in-memory fake and the SQLite store, so both keep
the same promises (ids, time stamps, filters, limits, pruning, logging)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plugport.errors import InvalidInputError
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.audit import (
    AUDIT_KINDS,
    AuditEvent,
    AuditLog,
    MemoryAuditLog,
    SqliteAuditLog,
    last_failure,
)

MakeLog = Callable[..., AuditLog]


@pytest.fixture(params=["memory", "sqlite"])
def make_log(request: pytest.FixtureRequest) -> Iterator[MakeLog]:
    """A factory for a fresh, empty store of the parametrised kind."""
    databases: list[RuntimeDatabase] = []

    def make(**options: int) -> AuditLog:
        if request.param == "memory":
            return MemoryAuditLog(**options)
        db = RuntimeDatabase(":memory:")
        databases.append(db)
        return SqliteAuditLog(db, **options)

    yield make
    for db in databases:
        db.close()


@pytest.fixture
def log(make_log: MakeLog) -> AuditLog:
    return make_log()


def deny(plugin: str = "acme.hello", at: float = 0.0) -> AuditEvent:
    return AuditEvent(plugin, "deny", "not granted", capability="net.fetch", at=at)


def test_record_fills_id_and_at(log: AuditLog) -> None:
    before = time.time()
    first = log.record(AuditEvent("acme.hello", "activate", "installed"))
    second = log.record(deny())
    after = time.time()

    assert (first.id, second.id) == (1, 2)
    assert before <= first.at <= second.at <= after
    assert first == AuditEvent("acme.hello", "activate", "installed", at=first.at, id=1)
    assert log.query() == [second, first]


def test_record_keeps_a_given_time_and_ignores_a_given_id(log: AuditLog) -> None:
    stored = log.record(AuditEvent("acme.hello", "kill", "too slow", at=1234.5, id=99))
    assert (stored.at, stored.id) == (1234.5, 1)
    assert log.query() == [stored]


def test_every_kind_is_accepted(log: AuditLog) -> None:
    for kind in AUDIT_KINDS:
        log.record(AuditEvent("acme.hello", kind, "because"))
    assert [e.kind for e in log.query()] == list(reversed(AUDIT_KINDS))


def test_unknown_kind_is_a_programming_error_and_stores_nothing(log: AuditLog) -> None:
    log.record(deny())
    with pytest.raises(ValueError, match="unknown audit kind 'explode'"):
        log.record(AuditEvent("acme.hello", "explode", "boom"))
    assert [e.id for e in log.query()] == [1]
    assert log.record(deny()).id == 2  # no id was used up by the refused event


@pytest.fixture
def filled(log: AuditLog) -> AuditLog:
    log.record(AuditEvent("acme.hello", "activate", "installed", at=100.0))
    log.record(deny("acme.hello", at=200.0))
    log.record(AuditEvent("acme.other", "activate", "installed", at=300.0))
    log.record(deny("acme.other", at=400.0))
    log.record(AuditEvent("acme.hello", "crash", "signal 9", at=500.0))
    return log


def ids(events: list[AuditEvent]) -> list[int]:
    return [e.id for e in events]


def test_query_is_newest_first(filled: AuditLog) -> None:
    assert ids(filled.query()) == [5, 4, 3, 2, 1]


def test_query_newest_means_last_recorded_not_largest_at(log: AuditLog) -> None:
    log.record(deny(at=900.0))
    log.record(deny(at=100.0))
    assert ids(log.query()) == [2, 1]


def test_query_filters(filled: AuditLog) -> None:
    assert ids(filled.query(plugin="acme.hello")) == [5, 2, 1]
    assert ids(filled.query(kind="deny")) == [4, 2]
    assert ids(filled.query(since=300.0)) == [5, 4, 3]  # inclusive
    assert ids(filled.query(plugin="acme.other", kind="activate")) == [3]
    assert ids(filled.query(plugin="acme.hello", kind="deny", since=250.0)) == []
    assert filled.query(plugin="acme.nobody") == []


def test_query_limit_keeps_the_newest(filled: AuditLog) -> None:
    assert ids(filled.query(limit=2)) == [5, 4]
    assert ids(filled.query(plugin="acme.hello", limit=1)) == [5]
    assert ids(filled.query(limit=1)) == [5]
    assert ids(filled.query(limit=10_000)) == [5, 4, 3, 2, 1]


@pytest.mark.parametrize("limit", [0, -1, 10_001, True])
def test_query_limit_out_of_range(filled: AuditLog, limit: int) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        filled.query(limit=limit)
    assert ids(filled.query()) == [5, 4, 3, 2, 1]


def test_query_returns_the_stored_fields(log: AuditLog) -> None:
    stored = log.record(AuditEvent("acme.hello", "deny", "no grant", "storage.set", at=7.25))
    (found,) = log.query()
    assert found == stored == AuditEvent("acme.hello", "deny", "no grant", "storage.set", 7.25, 1)


def test_pruning_keeps_the_newest_max_events(make_log: MakeLog) -> None:
    log = make_log(max_events=3)
    for n in range(10):
        log.record(AuditEvent("acme.hello", "restart", f"restart {n}"))
    assert [e.reason for e in log.query()] == ["restart 9", "restart 8", "restart 7"]
    assert ids(log.query()) == [10, 9, 8]  # ids keep counting past what was dropped


def test_record_many_stores_in_order_and_prunes(make_log: MakeLog) -> None:
    log = make_log(max_events=3)
    log.record(deny())
    stored = log.record_many(
        [AuditEvent("acme.hello", "webhook", f"attempt {n}", "webhooks.deliver") for n in range(4)]
    )
    assert ids(stored) == [2, 3, 4, 5]
    assert all(e.at > 0 for e in stored)
    assert [e.reason for e in log.query()] == ["attempt 3", "attempt 2", "attempt 1"]
    assert log.record_many([]) == []


def test_record_many_with_an_unknown_kind_stores_none(log: AuditLog) -> None:
    log.record(deny())
    with pytest.raises(ValueError, match="explode"):
        log.record_many([deny(), AuditEvent("acme.hello", "explode", "boom")])
    assert ids(log.query()) == [1]
    assert log.record(deny()).id == 2


def test_max_events_must_be_positive(make_log: MakeLog) -> None:
    with pytest.raises(ValueError, match="max_events"):
        make_log(max_events=0)


def test_concurrent_records_get_distinct_ids(log: AuditLog) -> None:
    def work(n: int) -> None:
        for i in range(25):
            log.record(AuditEvent(f"acme.p{n}", "activate", f"{i}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ids(log.query(limit=1000)) == list(range(100, 0, -1))


@pytest.mark.parametrize(
    ("kind", "level"),
    [
        ("activate", logging.INFO),
        ("deactivate", logging.INFO),
        ("restart", logging.INFO),
        ("release", logging.INFO),
        ("deny", logging.WARNING),
        ("refuse", logging.WARNING),
        ("kill", logging.WARNING),
        ("crash", logging.WARNING),
        ("quarantine", logging.WARNING),
        ("limit", logging.WARNING),
    ],
)
def test_each_event_is_logged_at_its_level(
    log: AuditLog, caplog: pytest.LogCaptureFixture, kind: str, level: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="plugport.audit")
    stored = log.record(AuditEvent("acme.hello", kind, "it happened", at=12.0))

    (record,) = caplog.records
    assert record.name == "plugport.audit"
    assert record.levelno == level
    assert record.getMessage() == f"audit {kind} acme.hello: it happened"
    assert record.plugport_audit == {
        "plugin": "acme.hello",
        "kind": kind,
        "reason": "it happened",
        "capability": "",
        "at": 12.0,
        "id": stored.id,
    }


def test_a_denial_log_names_the_capability(log: AuditLog, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="plugport.audit")
    log.record(deny())
    (record,) = caplog.records
    assert record.getMessage() == "audit deny acme.hello net.fetch: not granted"
    assert record.plugport_audit["capability"] == "net.fetch"


def test_a_refused_event_is_not_logged(log: AuditLog, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="plugport.audit")
    with pytest.raises(ValueError, match="unknown audit kind"):
        log.record(AuditEvent("acme.hello", "nope", "x"))
    assert caplog.records == []


# SQLite only: what a real file gives that memory does not.


def test_sqlite_events_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "runtime.db"
    db = RuntimeDatabase(path)
    first = SqliteAuditLog(db).record(deny(at=10.0))
    db.close()

    db = RuntimeDatabase(path)
    try:
        log = SqliteAuditLog(db)  # the table already exists: must not fail or wipe it
        assert log.query() == [first]
        second = log.record(deny(at=20.0))
        assert second.id == 2
        assert log.query() == [second, first]
    finally:
        db.close()


def test_sqlite_reopening_with_a_smaller_cap_prunes_on_next_record(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    db = RuntimeDatabase(path)
    log = SqliteAuditLog(db)
    for _ in range(5):
        log.record(deny())
    db.close()

    db = RuntimeDatabase(path)
    try:
        log = SqliteAuditLog(db, max_events=2)
        log.record(deny())
        assert ids(log.query()) == [6, 5]
        assert db.execute("SELECT count(*) FROM audit_events") == [(2,)]
    finally:
        db.close()


def test_sqlite_creates_the_plugin_index() -> None:
    db = RuntimeDatabase()
    try:
        SqliteAuditLog(db)
        rows = db.execute("SELECT sql FROM sqlite_master WHERE name = 'audit_events_plugin_id'")
        assert rows
        assert "(plugin, id)" in str(rows[0][0])
    finally:
        db.close()


def test_last_failure_is_the_newest_failure_since(make_log: MakeLog) -> None:
    log = make_log()
    assert last_failure(log, "acme.a") is None
    log.record(AuditEvent("acme.a", "crash", "exited with 3", at=10.0))
    log.record(AuditEvent("acme.a", "activate", "pid 7", at=11.0))
    log.record(AuditEvent("acme.a", "deny", "no network", "net.fetch", at=12.0))
    log.record(AuditEvent("acme.b", "kill", "other plugin", at=13.0))
    found = last_failure(log, "acme.a")
    assert found is not None
    assert (found.kind, found.reason, found.at) == ("crash", "exited with 3", 10.0)
    log.record(AuditEvent("acme.a", "quarantine", "failed 5 times", at=14.0))
    assert getattr(last_failure(log, "acme.a"), "kind", None) == "quarantine"
    assert last_failure(log, "acme.a", since=14.5) is None
