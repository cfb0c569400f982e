"""What a plugin's ``@webhook`` handler receives: one verified delivery, as the host kept it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["WebhookEvent"]


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A delivery the host verified with the endpoint's secret and stored before answering the
    sender. ``headers`` have lower-case names and never the signature or token; ``delivery_id``
    is the sender's id (or a replay key the host derived), ``None`` when it has none. A
    delivery may arrive more than once (after a restart mid-call, or a retry): use
    ``delivery_id`` to tell."""

    endpoint: str
    delivery_id: str | None
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    received_at: float = 0.0
    attempt: int = 1

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not)."""
        return json.loads(self.body)

    def to_wire(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "delivery_id": self.delivery_id,
            "body": self.body,
            "headers": dict(self.headers),
            "received_at": self.received_at,
            "attempt": self.attempt,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> WebhookEvent:
        return cls(
            endpoint=str(data["endpoint"]),
            delivery_id=data.get("delivery_id"),
            body=bytes(data["body"]),
            headers={str(k): str(v) for k, v in dict(data.get("headers") or {}).items()},
            received_at=float(data.get("received_at") or 0.0),
            attempt=int(data.get("attempt") or 1),
        )
