"""The host's SQLite state: rows round-trip exactly, the journal remembers what to roll back to,
pins are durable, and an audit record commits or rolls back with the change it describes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plugport.host.state import HostAudit, HostState, Installation, Journal, PinnedRegistry


class Clock:
    """A clock the test moves by hand, so every timestamp is an exact value."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


PERMISSIONS: dict[str, Any] = {
    "network": ["api.example.com", "hooks.example.com:8443"],
    "storage": 1048576,
    "events": {"publish": ["orders.created"], "subscribe": ["orders.**"]},
    "ui": ["messages", "widgets"],
    "config": True,
}


def installation(name: str = "acme.hello", version: str = "1.0.0", **changes: Any) -> Installation:
    values: dict[str, Any] = {
        "name": name,
        "version": version,
        "source_kind": "registry",
        "source": "https://registry.example.com",
        "sha256": "ab" * 32,
        "key_id": "cd" * 32,
        "enabled": True,
        "requested": True,
        "permissions": PERMISSIONS,
        "dependencies": {"acme.base": "<2,>=1"},
        "installed_at": 10.0,
        "updated_at": 20.0,
    }
    values.update(changes)
    return Installation(**values)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(tmp_path: Path, clock: Clock) -> Iterator[HostState]:
    opened = HostState(tmp_path / "home" / "host.sqlite", clock=clock)
    yield opened
    opened.close()


def put(state: HostState, *rows: Installation) -> None:
    with state.transaction() as db:
        for row in rows:
            state.put(db, row)


# --- installations ---------------------------------------------------------------------------


def test_an_installation_round_trips_every_field(state: HostState) -> None:
    row = installation()
    put(state, row)
    got = state.get("acme.hello")
    assert got == row
    assert got is not None
    assert got.permissions == PERMISSIONS
    assert got.dependencies == {"acme.base": "<2,>=1"}
    assert (got.enabled, got.requested) == (True, True)
    assert (got.installed_at, got.updated_at) == (10.0, 20.0)


def test_installations_are_listed_by_name_and_replaced_in_place(state: HostState) -> None:
    put(state, installation("zeta.b"), installation("acme.a", requested=False, enabled=False))
    put(state, installation("zeta.b", "2.0.0", permissions={}, dependencies={}))
    rows = state.installations()
    assert [(r.name, r.version) for r in rows] == [("acme.a", "1.0.0"), ("zeta.b", "2.0.0")]
    assert (rows[0].enabled, rows[0].requested) == (False, False)
    assert (rows[1].permissions, rows[1].dependencies) == ({}, {})
    assert state.get("acme.missing") is None


def test_delete_removes_only_the_named_row(state: HostState) -> None:
    put(state, installation("acme.a"), installation("acme.b"))
    with state.transaction() as db:
        state.delete(db, "acme.a")
    assert [r.name for r in state.installations()] == ["acme.b"]


def test_set_enabled_flips_the_flag_and_stamps_the_update(state: HostState, clock: Clock) -> None:
    put(state, installation())
    clock.now = 555.0
    state.set_enabled("acme.hello", False)
    assert state.get("acme.hello") == installation(enabled=False, updated_at=555.0)
    clock.now = 556.0
    state.set_enabled("acme.hello", True)
    assert state.get("acme.hello") == installation(enabled=True, updated_at=556.0)


def test_set_enabled_on_an_unknown_plugin_creates_nothing(state: HostState) -> None:
    state.set_enabled("acme.ghost", True)
    assert state.installations() == []


def test_installation_json_round_trip() -> None:
    row = installation()
    assert Installation.from_json(row.as_json()) == row


# --- the journal ------------------------------------------------------------------------------


def test_a_switch_without_previous_is_journalled_and_restored_to_nothing(
    state: HostState, clock: Clock
) -> None:
    new = installation()
    clock.now = 42.0
    with state.transaction() as db:
        state.begin_switch(db, "install", new, None)
    assert state.get("acme.hello") == new
    journals = state.journals()
    assert journals == [Journal("acme.hello", "install", None, "1.0.0", 42.0)]
    with state.transaction() as db:
        state.restore(db, journals[0])
    assert state.get("acme.hello") is None
    assert state.installations() == []
    assert state.journals() == []


def test_a_switch_with_previous_remembers_the_whole_previous_row(
    state: HostState, clock: Clock
) -> None:
    old = installation(enabled=False, permissions={"storage": 10}, dependencies={})
    put(state, old)
    new = installation(version="2.0.0", updated_at=99.0)
    clock.now = 77.0
    with state.transaction() as db:
        state.begin_switch(db, "update", new, old)
    assert state.get("acme.hello") == new
    (journal,) = state.journals()
    assert journal == Journal("acme.hello", "update", old, "2.0.0", 77.0)
    assert journal.previous is not None
    assert journal.previous.enabled is False
    assert journal.previous.permissions == {"storage": 10}
    with state.transaction() as db:
        state.restore(db, journal)
    assert state.get("acme.hello") == old
    assert state.journals() == []


def test_confirm_keeps_the_new_row_and_forgets_the_journal(state: HostState) -> None:
    old, new = installation(), installation(version="2.0.0")
    put(state, old)
    with state.transaction() as db:
        state.begin_switch(db, "update", new, old)
        state.begin_switch(db, "install", installation("acme.other"), None)
    with state.transaction() as db:
        state.confirm(db, "acme.hello")
    assert state.get("acme.hello") == new
    assert [j.name for j in state.journals()] == ["acme.other"]


def test_the_journal_survives_a_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "host.sqlite"
    first = HostState(path, clock=clock)
    old, new = installation(), installation(version="2.0.0")
    with first.transaction() as db:
        first.put(db, old)
        first.begin_switch(db, "update", new, old)
    first.close()
    second = HostState(path, clock=clock)
    try:
        assert second.journals() == [Journal("acme.hello", "update", old, "2.0.0", 1000.0)]
        assert second.get("acme.hello") == new
    finally:
        second.close()


def crash_inside_a_transaction(
    state: HostState, *steps: Callable[[sqlite3.Connection], None]
) -> None:
    with state.transaction() as db:
        for step in steps:
            step(db)
        raise RuntimeError("crash")


def test_a_failed_switch_transaction_leaves_no_journal_and_no_row(state: HostState) -> None:
    def switch(db: sqlite3.Connection) -> None:
        state.begin_switch(db, "install", installation(), None)

    with pytest.raises(RuntimeError, match="crash"):
        crash_inside_a_transaction(state, switch)
    assert state.journals() == []
    assert state.installations() == []


# --- trust ------------------------------------------------------------------------------------


def test_a_registry_pin_round_trips_and_moves_forward(state: HostState) -> None:
    url = "https://registry.example.com"
    assert state.registry(url) is None
    first = PinnedRegistry(url, "11" * 32, "PEM-A", 3, "22" * 32)
    state.pin_registry(first)
    assert state.registry(url) == first
    newer = PinnedRegistry(url, "11" * 32, "PEM-A", 4, "33" * 32)
    state.pin_registry(newer)
    assert state.registry(url) == newer
    assert state.registry("https://other.example.com") is None


def test_publisher_key_pinning_is_idempotent_and_per_namespace(state: HostState) -> None:
    assert state.publisher_keys("acme") == set()
    with state.transaction() as db:
        state.pin_publisher_key(db, "acme", "aa" * 32, 1.0)
        state.pin_publisher_key(db, "acme", "aa" * 32, 2.0)
    with state.transaction() as db:
        state.pin_publisher_key(db, "acme", "aa" * 32, 3.0)
        state.pin_publisher_key(db, "acme", "bb" * 32, 3.0)
        state.pin_publisher_key(db, "zeta", "cc" * 32, 3.0)
    assert state.publisher_keys("acme") == {"aa" * 32, "bb" * 32}
    assert state.publisher_keys("zeta") == {"cc" * 32}
    assert state.publisher_keys("other") == set()
    with state.transaction() as db:
        rows = db.execute(
            "SELECT pinned_at FROM publisher_keys WHERE namespace = 'acme' AND key_id = ?",
            ("aa" * 32,),
        ).fetchall()
    assert [row["pinned_at"] for row in rows] == [1.0]  # the first pin is kept


# --- audit ------------------------------------------------------------------------------------


def test_an_audit_record_rolls_back_with_the_change_it_describes(state: HostState) -> None:
    def change(db: sqlite3.Connection) -> None:
        state.put(db, installation())

    def record(db: sqlite3.Connection) -> None:
        state.audit("install", "acme.hello", "ok", actor="ada", db=db, version="1.0.0")

    with pytest.raises(RuntimeError, match="crash"):
        crash_inside_a_transaction(state, change, record)
    assert state.get("acme.hello") is None
    assert state.audit_trail() == []
    # the connection is usable again: the rollback ended the transaction
    state.audit("install", "acme.hello", "failed", actor="ada")
    assert [a.outcome for a in state.audit_trail()] == ["failed"]


def test_an_audit_record_commits_with_the_change(state: HostState, clock: Clock) -> None:
    clock.now = 12.5
    with state.transaction() as db:
        state.put(db, installation())
        state.audit(
            "install", "acme.hello", "ok", actor="ada", db=db, version="1.0.0", path=Path("/x")
        )
    assert state.get("acme.hello") == installation()
    (record,) = state.audit_trail()
    assert record == HostAudit(
        12.5, "ada", "install", "acme.hello", "ok", {"version": "1.0.0", "path": "/x"}, record.id
    )
    assert record.id > 0


def test_audit_trail_is_newest_first_filtered_and_limited(state: HostState, clock: Clock) -> None:
    for at, subject in enumerate(["acme.a", "acme.b", "acme.a", "acme.c", "acme.a"]):
        clock.now = float(at)
        state.audit("install", subject, "ok", actor="host", n=at)
    everything = state.audit_trail()
    assert [(a.subject, a.detail["n"]) for a in everything] == [
        ("acme.a", 4),
        ("acme.c", 3),
        ("acme.a", 2),
        ("acme.b", 1),
        ("acme.a", 0),
    ]
    assert [a.at for a in everything] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert [a.id for a in everything] == sorted((a.id for a in everything), reverse=True)
    assert [a.detail["n"] for a in state.audit_trail(subject="acme.a")] == [4, 2, 0]
    assert [a.detail["n"] for a in state.audit_trail(subject="acme.a", limit=2)] == [4, 2]
    assert [a.detail["n"] for a in state.audit_trail(limit=1)] == [4]
    assert state.audit_trail(subject="acme.none") == []


# --- meta -------------------------------------------------------------------------------------


def test_reopening_keeps_rows_and_sets_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "host.sqlite"
    first = HostState(path)
    put(first, installation())
    first.close()
    second = HostState(path)
    try:
        assert second.installations() == [installation()]
    finally:
        second.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)
    raw.close()


def test_an_in_memory_state_works_without_a_file(tmp_path: Path) -> None:
    memory = HostState()
    try:
        put(memory, installation())
        assert memory.get("acme.hello") == installation()
        assert memory.path == ":memory:"
    finally:
        memory.close()
    assert list(tmp_path.iterdir()) == []
