"""Outbound webhook deliveries on the host's one durable queue: each ``webhooks.deliver`` is a
``@webhook-out`` task, committed before the plugin's call returns; every attempt is the
runtime's :meth:`~plugport.runtime.capabilities.webhooks.WebhookService.attempt` (the URL and
address checks, signing, the send, the verdict and the audit line), and the queue keeps what it
decided: done, again at its time (a receiver's ``Retry-After``, exponential backoff with
jitter, a target host's rate), or dead. The operator's view (``host.deliveries``, dead letters,
redeliver) reads the same records.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from plugport.errors import InvalidInputError, NotFoundError
from plugport.host.tasks.queue import GiveUp, RetryAt, SystemTask, TaskQueue
from plugport.host.tasks.store import TaskRecord
from plugport.manifest import TaskSpec
from plugport.runtime.capabilities.webhooks import WebhookService
from plugport.runtime.outbox import OUTBOX_FILE, Delivery, NewDelivery

__all__ = ["OUTBOUND_TASK", "QueueDeliveries", "delivery_view"]

log = logging.getLogger(__name__)

OUTBOUND_TASK = "@webhook-out"
_STATE_OF = {
    "queued": "pending",
    "running": "sending",
    "succeeded": "done",
    "dead": "dead",
    "cancelled": "dead",
    "rejected": "dead",
}
_TASK_STATE = {"pending": "queued", "sending": "running", "done": "succeeded", "dead": "dead"}
ATTEMPT_TIMEOUT_MS = 120_000
"""An attempt's own limit on the queue (the send has its own, ``timeout_ms``, well inside)."""


def delivery_of(record: TaskRecord, *, attempts: int | None = None) -> Delivery:
    """The runtime's view of the delivery a task carries (``attempts``: made before)."""
    payload = record.payload
    last = record.result if isinstance(record.result, dict) else {}
    return Delivery(
        id=record.id,
        plugin=record.plugin,
        target=payload["target"],
        body=base64.b64decode(payload["body"]),
        headers=tuple((str(k), str(v)) for k, v in payload.get("headers") or ()),
        sign_with=payload.get("sign_with"),
        idempotency_key=record.idempotency_key,
        state=_STATE_OF[record.state],  # type: ignore[arg-type]
        attempts=record.attempts if attempts is None else attempts,
        next_at=record.due_at,
        created_at=record.submitted_at,
        updated_at=record.finished_at or record.started_at or record.submitted_at,
        last_status=last.get("status"),
        last_error=record.error,
    )


def delivery_view(record: TaskRecord) -> dict[str, object]:
    return delivery_of(record).public()


class QueueDeliveries:
    """The :class:`~plugport.runtime.capabilities.webhooks.DeliveryQueue` the host gives its
    runtime's webhook service."""

    def __init__(self, queue: TaskQueue, service: WebhookService) -> None:
        self.queue = queue
        self.service = service
        backoff = service.options.backoff
        spec = TaskSpec.model_validate(
            {
                # The verdicts decide (RetryAt, GiveUp); this only bounds a runaway.
                "max-attempts": min(100, backoff.max_attempts + 1),
                "backoff-seconds": backoff.base_s,
                "max-backoff-seconds": backoff.cap_s,
                "timeout-ms": ATTEMPT_TIMEOUT_MS,
            }
        )
        queue.register(
            SystemTask(
                OUTBOUND_TASK,
                self._run,
                spec,
                concurrency=service.options.max_in_flight,
                retention_s=service.options.done_retention_s,
            )
        )
        service.queue = self

    async def submit_delivery(self, delivery: NewDelivery) -> str:
        payload = {
            "target": delivery.target,
            "body": base64.b64encode(delivery.body).decode("ascii"),
            "headers": [list(h) for h in delivery.headers],
            "sign_with": delivery.sign_with,
        }
        record, _ = self.queue.submit_system(
            OUTBOUND_TASK,
            delivery.plugin,
            payload,
            idempotency_key=delivery.idempotency_key,
            submitted_by=f"plugin:{delivery.plugin}",
        )
        return record.id

    async def _run(self, record: TaskRecord) -> dict[str, Any]:
        decided = await self.service.attempt(delivery_of(record, attempts=record.attempts - 1))
        result = None if decided.status is None else {"status": decided.status}
        if decided.outcome == "done":
            return {"status": decided.status}
        if decided.outcome == "wait":
            raise RetryAt(decided.at or time.time(), decided.reason, counted=False)
        if decided.outcome == "retry":
            raise RetryAt(decided.at or time.time(), decided.reason, result=result)
        raise GiveUp(decided.reason, result=result)

    # --- the operator's view ------------------------------------------------------------------

    def list(
        self, *, state: str | None = None, plugin: str | None = None, limit: int = 100
    ) -> list[dict[str, object]]:
        """Newest first; ``state`` one of pending, sending, done, dead."""
        if state is not None and state not in _TASK_STATE:
            raise InvalidInputError(f"state must be one of {', '.join(_TASK_STATE)}, not {state!r}")
        records = self.queue.store.find(
            plugin=plugin,
            type=OUTBOUND_TASK,
            state=None if state is None else _TASK_STATE[state],
            limit=limit,
        )
        return [delivery_view(r) for r in records]

    def get(self, delivery_id: str) -> Delivery:
        record = self.queue.store.get(delivery_id)
        if record is None or record.type != OUTBOUND_TASK:
            raise NotFoundError("delivery", delivery_id, "list them with plugport webhooks dead")
        return delivery_of(record)

    def redeliver(self, delivery_id: str) -> Delivery:
        """A dead delivery due again now with a fresh count of attempts."""
        found = self.get(delivery_id)
        if found.state != "dead":
            raise InvalidInputError(
                f"delivery {delivery_id} is {found.state}, not dead; only a dead delivery is "
                "redelivered"
            )
        record = self.queue.store.retry(delivery_id, time.time())
        self.queue.engine.push(record.id, priority=record.priority)
        self.queue.wake()
        return delivery_of(record)

    async def import_legacy(self, state_dir: Path) -> int:
        """Move what a Plugport 0.2 outbox file (``runtime/outbox.sqlite``) still had to send
        onto the queue, then rename it (``.migrated``; its sent and dead rows stay there for
        the operator); how many deliveries."""
        path = state_dir / OUTBOX_FILE
        if not path.is_file():
            return 0
        db = sqlite3.connect(path)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute(
                "SELECT * FROM deliveries WHERE state IN ('pending', 'sending') ORDER BY created_at"
            ).fetchall()
        finally:
            db.close()
        for row in rows:
            await self.submit_delivery(
                NewDelivery(
                    row["id"],
                    row["plugin"],
                    row["target"],
                    bytes(row["body"]),
                    tuple(tuple(h) for h in json.loads(row["headers"])),
                    row["sign_with"],
                    row["idempotency_key"],
                )
            )
        path.rename(path.with_name(path.name + ".migrated"))
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        if rows:
            log.info("moved %d pending webhook deliveries from %s onto the queue", len(rows), path)
        return len(rows)
