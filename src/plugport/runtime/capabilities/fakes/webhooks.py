"""The ``webhooks.deliver`` fake: the plugin's deliveries go through the real capability (the
manifest's ``webhooks.deliver`` rule, the URL checks, the payload and header checks, the real
outbox and sender, signing with the secrets fake's key), and the fake answers each attempt in
place of the network, recording what would have been sent."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plugport.errors import InvalidInputError
from plugport.runtime.capabilities.webhooks import WebhookService
from plugport.runtime.outbox import Delivery

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeWebhooks", "SentWebhook"]


@dataclass(frozen=True)
class SentWebhook:
    """One attempt the fake answered: where, the headers the host added (the signature too),
    the JSON body, and the status the fake gave."""

    id: str
    target: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class FakeWebhooks:
    """``handle.webhooks``: ``sent`` lists every attempt; ``fail(target, status)`` makes
    attempts to ``target`` (an exact URL, or a prefix ending in ``*``) answer ``status``;
    ``state(id)`` is a delivery's state in the outbox; ``settle()`` waits until nothing is
    due now."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        service = runtime.services.webhooks
        if not isinstance(service, WebhookService):
            raise InvalidInputError("this runtime has no webhook outbox")
        self._service = service
        self._failures: dict[str, int] = {}
        self._sent: list[SentWebhook] = []
        service.intercept(self.plugin, self._answer)

    @property
    def sent(self) -> list[SentWebhook]:
        return list(self._sent)

    def fail(self, target: str, status: int = 500) -> None:
        """Answer ``status`` to attempts to ``target`` from now on (``succeed`` undoes it)."""
        if not 100 <= status <= 599:
            raise InvalidInputError(f"fail(): status must be an HTTP status, not {status}")
        self._failures[target] = status

    def succeed(self, target: str) -> None:
        self._failures.pop(target, None)

    def state(self, delivery_id: str) -> Delivery:
        return self._service.outbox.get(delivery_id)

    async def settle(self, timeout_s: float = 5.0) -> None:
        """Wait until the plugin has no delivery that is due now (sent, or waiting for a
        later retry)."""
        async with asyncio.timeout(timeout_s):
            while True:
                now = self._service._clock()
                rows = self._service.outbox.list(plugin=self.plugin, limit=1000)
                if not any(
                    r.state == "sending" or (r.state == "pending" and r.next_at <= now)
                    for r in rows
                ):
                    return
                self._service.wake()
                await asyncio.sleep(0.01)

    async def _answer(
        self, delivery: Delivery, url: str, headers: list[tuple[str, str]]
    ) -> tuple[int, dict[str, str]]:
        status = self._failures.get(url)
        if status is None:
            prefixes = [(t[:-1], s) for t, s in self._failures.items() if t.endswith("*")]
            status = next((s for prefix, s in prefixes if url.startswith(prefix)), 200)
        self._sent.append(SentWebhook(delivery.id, url, dict(headers), delivery.body, status))
        return status, {}

    def close(self) -> None:
        self._service.intercept(self.plugin, None)
