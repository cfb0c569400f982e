"""The outbox's retention of delivered rows: ``prune_done`` on a real SQLite file, and the
sender's loop pruning on its own as a fake clock passes ``done_retention_s``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import InvalidInputError
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.audit import MemoryAuditLog
from plugport.runtime.capabilities._delivery_rules import WebhookOptions
from plugport.runtime.capabilities._record import Services
from plugport.runtime.capabilities.config import PluginSettings
from plugport.runtime.capabilities.events import EventBus
from plugport.runtime.capabilities.storage import PluginStorage
from plugport.runtime.capabilities.ui import UiRegistry
from plugport.runtime.capabilities.webhooks import WebhookService
from plugport.runtime.metrics import RuntimeMetrics
from plugport.runtime.outbox import NewDelivery, SqliteOutbox

DAY = 24 * 3600.0
T0 = 1_700_000_000.0


def _add(outbox: SqliteOutbox, delivery_id: str, at: float, end: str) -> None:
    """A delivery stored and claimed at ``at`` that ends ``done``, ``dead`` or stays pending."""
    new = NewDelivery(delivery_id, "acme.hooks", "https://hooks.example.com/in", b"{}")
    outbox.enqueue([new], at)
    if end == "pending":
        return
    outbox.claim_due(at, 100)
    if end == "done":
        outbox.done(delivery_id, 204, at)
    else:
        outbox.dead(delivery_id, at, status=410, error="HTTP 410")


def _ids(outbox: SqliteOutbox) -> list[str]:
    return sorted(d.id for d in outbox.list(limit=1000))


@pytest.fixture
def outbox(tmp_path: Path) -> Any:
    box = SqliteOutbox(tmp_path / "outbox.sqlite")
    yield box
    box.close()


def test_prune_forgets_only_done_rows_older_than_the_cut(outbox: SqliteOutbox) -> None:
    _add(outbox, "old-done", T0, "done")
    _add(outbox, "old-dead", T0, "dead")
    _add(outbox, "old-pending", T0, "pending")
    _add(outbox, "new-done", T0 + 6 * DAY, "done")
    assert outbox.prune_done(T0) == 0  # strictly before the cut
    assert len(_ids(outbox)) == 4
    assert outbox.prune_done(T0 + 1) == 1
    assert _ids(outbox) == ["new-done", "old-dead", "old-pending"]
    assert outbox.prune_done(T0 + 1) == 0  # idempotent


def test_prune_works_in_batches(outbox: SqliteOutbox) -> None:
    for n in range(25):
        _add(outbox, f"d{n:02}", T0 + n, "done")
    assert outbox.prune_done(T0 + 20, batch=7) == 20
    assert _ids(outbox) == [f"d{n}" for n in range(20, 25)]


def test_retention_settings_are_checked() -> None:
    assert WebhookOptions().done_retention_s == 7 * DAY
    with pytest.raises(InvalidInputError, match="done_retention_s"):
        WebhookOptions(done_retention_s=-1)
    with pytest.raises(InvalidInputError, match="prune_every_s"):
        WebhookOptions(prune_every_s=0)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _services() -> Services:
    db = RuntimeDatabase(":memory:")

    async def nowhere(*_: object) -> None:
        return None

    return Services(
        storage=PluginStorage(db),
        settings=PluginSettings(db),
        events=EventBus(nowhere),
        ui=UiRegistry(),
        audit=MemoryAuditLog(),
        metrics=RuntimeMetrics(),
    )


def test_the_sender_prunes_done_rows_past_the_retention(tmp_path: Path) -> None:
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    _add(outbox, "a", T0, "done")
    _add(outbox, "b", T0 + 3 * DAY, "done")
    _add(outbox, "dead", T0, "dead")
    clock = _Clock(T0 + 7 * DAY - 10)
    options = WebhookOptions(poll_s=0.01, done_retention_s=7 * DAY, prune_every_s=3600)
    service = WebhookService(outbox, options, _services(), lambda _: None, clock=clock)

    async def until(expected: list[str]) -> list[str]:
        """The rows once they are ``expected`` (or after 5 s, whatever they are)."""
        async with asyncio.timeout(5):
            while _ids(outbox) != expected:
                await asyncio.sleep(0.01)
        return _ids(outbox)

    async def main() -> list[list[str]]:
        seen = []
        service.start()
        try:
            await asyncio.sleep(0.2)  # many turns of the sender's loop (poll_s = 0.01)
            seen.append(_ids(outbox))  # nothing is 7 days old yet
            clock.now = T0 + 7 * DAY + 1
            await asyncio.sleep(0.2)
            seen.append(_ids(outbox))  # "a" is, but the next prune is prune_every_s away
            clock.now = T0 + 7 * DAY + 3600
            seen.append(await until(["b", "dead"]))
            clock.now = T0 + 10 * DAY + 1
            seen.append(await until(["dead"]))
        finally:
            await service.close()
        return seen

    try:
        seen = asyncio.run(main())
    finally:
        outbox.close()
    assert seen == [
        ["a", "b", "dead"],
        ["a", "b", "dead"],
        ["b", "dead"],
        ["dead"],  # dead letters wait for the operator, however old
    ]
